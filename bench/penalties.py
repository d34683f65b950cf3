"""Penalties on the discriminator and per-step hooks (compare_gan's penalty library).

A penalty is `fn(D, x_real, x_fake, hp) -> terms` with the weighted penalty under "loss"; it is
added to the D loss by the training loop. A hook is `fn(D, hp) -> None`, run after every D step
(WGAN's weight clipping). Both read their hyperparameters from `hp`, the trial's resolved dict.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

Terms = dict[str, torch.Tensor]
Penalty = Callable[[nn.Module, torch.Tensor, torch.Tensor, Mapping[str, Any]], Terms]
Hook = Callable[[nn.Module, Mapping[str, Any]], None]


def _grad_norm(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return grad.flatten(1).norm(2, dim=1)  # (B,)


def wgangp_penalty(D: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, hp: Mapping[str, Any]) -> Terms:
    """Gulrajani et al.: λ E (‖∇ D_logit(x̂)‖₂ - 1)², x̂ = x + α (G(z) - x), α ~ U[0, 1] per example."""
    alpha = torch.rand(x_real.shape[0], *([1] * (x_real.dim() - 1)), device=x_real.device, dtype=x_real.dtype)
    x_hat = (x_real + alpha * (x_fake.detach() - x_real)).requires_grad_(True)
    norm = _grad_norm(D(x_hat), x_hat)
    gp = ((norm - 1.0) ** 2).mean()
    return {"loss": hp["gp_lambda"] * gp, "gp": gp, "grad_norm": norm.mean().detach()}


def clip_weights(D: nn.Module, hp: Mapping[str, Any]) -> None:
    """WGAN: clip every D weight to [-c, c] after each D step (Arjovsky et al.; compare_gan clips all variables)."""
    c = hp["clip"]
    with torch.no_grad():
        for p in D.parameters():
            p.clamp_(-c, c)
