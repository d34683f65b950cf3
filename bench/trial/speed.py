"""Speed settings of the training loop: fused Adam, and the study keys `[train] precision`,
`compile` and `channels_last` (all off by default; issue 9, README "Performance").

None of these changes the algorithm of the paper (Lucic et al. 2018: Adam, the same networks);
they change how it is computed, and so the float rounding:

- **Adam** runs as PyTorch's fused kernel (one kernel updates every parameter) on devices that
  have one (CPU and CUDA in current PyTorch), else as its multi-tensor `foreach` form; never the
  per-parameter Python loop that `torch.optim.Adam` picks by default on CPUs. Measured on the
  2-core CPU: about 15 % faster per step at the paper's width (`make bench`, `loop_options`).
- **precision = "bf16"**: the step runs under `torch.autocast(bfloat16)`; weights, gradients and
  Adam state stay fp32 (mixed precision; bf16 has fp32's exponent range, so no loss scaling).
  G's and D's outputs are cast back to fp32 by a forward hook, so every loss and penalty is
  computed in fp32. Evaluation (generation and metrics) always runs in fp32.
- **channels_last**: conv nets and image batches in NHWC layout, which GPU tensor cores and
  oneDNN prefer; a no-op for nets without 4-D weights.
- **tf32**: TF32 for cuDNN convolutions and float32 matmuls in the training step (both flags, set
  per step and restored after, so the process default, cuDNN's TF32 on, never leaks into training).
  Evaluation always turns both off (metrics.base.full_precision).
- **compile**: `nn.Module.compile()` on G and D, in place, so parameter names, checkpoints and
  evaluation code are unchanged. It costs a one-off compilation (minutes on a small CPU).

PyTorch's automatic mixed precision recipe: docs "Automatic Mixed Precision package - torch.amp";
channels_last: the "(beta) Channels Last Memory Format in PyTorch" tutorial.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable

import torch
from torch import nn

from bench.metrics.base import EVAL_NUMERICS, tf32, tf32_state

PRECISIONS = ("fp32", "bf16")


def adam_impl(device: torch.device) -> str:
    """'fused' where PyTorch has a fused Adam kernel for this device type, else 'foreach'."""
    from torch.optim.optimizer import _get_fused_kernels_supported_devices

    return "fused" if device.type in _get_fused_kernels_supported_devices() else "foreach"


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float], device: torch.device) -> torch.optim.Adam:
    """The paper's Adam, computed with the fastest implementation this device has."""
    return torch.optim.Adam(params, lr=lr, betas=betas, **{adam_impl(device): True})


def _to_fp32(module: nn.Module, inputs: Any, output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.float() if output.is_floating_point() else output
    if isinstance(output, tuple):
        return tuple(_to_fp32(module, inputs, o) for o in output)
    return output


def prepare(module: nn.Module, train: Any) -> nn.Module:
    """Apply a study's speed keys to a network on its device, in place (returns it for chaining)."""
    if train.channels_last:
        module.to(memory_format=torch.channels_last)  # only 4-D parameters change layout
    if train.precision == "bf16":
        module.register_forward_hook(_to_fp32)
    if train.compile:
        module.compile()
    return module


def batch(x: torch.Tensor, train: Any) -> torch.Tensor:
    """An input batch in the layout the networks were prepared for."""
    if train.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x


def autocast(train: Any, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a training step runs in: bf16 autocast, or nothing."""
    if train.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def numerics(train: Any) -> contextlib.AbstractContextManager:
    """The TF32 flags a training step runs under: `[train] tf32` for cuDNN and matmul alike."""
    return tf32(train.tf32)


def settings(train: Any, device: torch.device) -> dict[str, Any]:
    """What the loop does on this device, for the trial's manifest; `numerics` holds both TF32 flags
    as training sets them and as every evaluation sets them."""
    with tf32(train.tf32):
        during_training = tf32_state()
    return {"adam": adam_impl(device), "precision": train.precision, "compile": train.compile,
            "channels_last": train.channels_last, "tf32": train.tf32,
            "numerics": {"training": during_training, "evaluation": dict(EVAL_NUMERICS)}}
