"""GAN losses as pure functions of discriminator outputs (compare_gan's loss library).

Each loss is a pair: `d(real, fake, state) -> terms` and `g(fake, state) -> terms`, where `real`
and `fake` are the raw discriminator outputs (logits, shape (B,) or (B, 1)) and `terms` is a dict
of scalar tensors with the optimised quantity under "loss" and every component named beside it
so it can be logged. `state` carries per-step state (BEGAN's k_t) explicitly; stateless losses
ignore it. Batch means throughout, as in PROTOCOL.md.

Names tell the truth: `minimax` is Goodfellow et al.'s saturating G loss (mm_gan), `non_saturating`
the -log D(G(z)) form (ns_gan).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

Terms = dict[str, torch.Tensor]
State = Mapping[str, Any]


@dataclass(frozen=True)
class Loss:
    """A D loss and a G loss that belong together."""

    name: str
    d: Callable[[torch.Tensor, torch.Tensor, State], Terms]
    g: Callable[[torch.Tensor, State], Terms]


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0])


def gan_d(real: torch.Tensor, fake: torch.Tensor, state: State = {}) -> Terms:
    """D loss of the original GAN: -E log D(x) - E log(1 - D(G(z))), D = sigmoid(logit).

    Computed from logits with softplus: -log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l).
    """
    d_real = F.softplus(-_flat(real)).mean()
    d_fake = F.softplus(_flat(fake)).mean()
    return {"loss": d_real + d_fake, "d_real": d_real, "d_fake": d_fake}


def minimax_g(fake: torch.Tensor, state: State = {}) -> Terms:
    """Saturating G loss: E log(1 - D(G(z))) = -E softplus(logit)."""
    loss = -F.softplus(_flat(fake)).mean()
    return {"loss": loss}


def non_saturating_g(fake: torch.Tensor, state: State = {}) -> Terms:
    """Non-saturating G loss: -E log D(G(z)) = E softplus(-logit)."""
    return {"loss": F.softplus(-_flat(fake)).mean()}


def wasserstein_d(real: torch.Tensor, fake: torch.Tensor, state: State = {}) -> Terms:
    """Critic loss: -E D(x) + E D(G(z)) on the raw outputs; `w_distance` = E D(x) - E D(G(z))."""
    d_real = -_flat(real).mean()
    d_fake = _flat(fake).mean()
    return {"loss": d_real + d_fake, "d_real": d_real, "d_fake": d_fake, "w_distance": -(d_real + d_fake)}


def wasserstein_g(fake: torch.Tensor, state: State = {}) -> Terms:
    """G loss: -E D(G(z))."""
    return {"loss": -_flat(fake).mean()}


minimax = Loss("minimax", gan_d, minimax_g)
non_saturating = Loss("non_saturating", gan_d, non_saturating_g)
wasserstein = Loss("wasserstein", wasserstein_d, wasserstein_g)

LOSSES: dict[str, Loss] = {loss.name: loss for loss in (minimax, non_saturating, wasserstein)}
