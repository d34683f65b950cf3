"""The generator's exponential moving average, `[train] g_ema` (Yazıcı et al. 2019, "The unusual
effectiveness of averaging in GAN training"; the G_ema of StyleGAN2 and of current GAN libraries).

After every G update the averaged copy moves towards G: θ_ema ← d θ_ema + (1 - d) θ_G, with
d = `[train] g_ema`; it starts as a copy of G before the first step (as StyleGAN2's G_ema does).
Where the study sets a decay, the copy is what evaluation scores and what the checkpoints keep
beside G (`records.ema_checkpoint_path`); decay 0 builds nothing and changes nothing.

The update is torch.optim.swa_utils.get_ema_multi_avg_fn, the library's foreach lerp, on the
device. Its AveragedModel wrapper is not used: its update_parameters reads its step count back to
the host twice per call (`n_averaged == 0`, `n_averaged > 0`), and the training loop reads nothing
back between log intervals. BatchNorm's floating buffers (running mean and variance) are averaged
with the same decay, as AveragedModel(use_buffers=True) and BigGAN-PyTorch's `ema` do, so 'eval'
mode samples with statistics that moved with the averaged weights; integer buffers (BN's
num_batches_tracked) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


class GeneratorEMA:
    """An averaged copy of G, updated in place on G's device."""

    def __init__(self, G: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"g_ema decay {decay} is outside (0, 1)")
        self.decay = decay
        self.module = copy.deepcopy(G).requires_grad_(False)
        self._lerp = get_ema_multi_avg_fn(decay)

    @torch.no_grad()
    def update(self, G: nn.Module) -> None:
        """θ_ema ← d θ_ema + (1 - d) θ_G for parameters and floating buffers; other buffers copied."""
        mine = [*self.module.parameters(), *self.module.buffers()]
        theirs = [t.detach() for t in (*G.parameters(), *G.buffers())]
        floating = [(a, b) for a, b in zip(mine, theirs, strict=True) if a.is_floating_point()]
        if floating:
            self._lerp([a for a, _ in floating], [b for _, b in floating], None)
        for a, b in zip(mine, theirs, strict=True):
            if not a.is_floating_point():
                a.copy_(b)


def make(G: nn.Module, decay: float) -> GeneratorEMA | None:
    """The averaged copy for `[train] g_ema = decay`; None for 0 (off)."""
    return GeneratorEMA(G, decay) if decay > 0 else None
