"""Penalties on the discriminator and per-step hooks (compare_gan's penalty library).

A penalty is `fn(D, x_real, x_fake, hp) -> terms` with the weighted penalty under "loss"; it is
added to the D loss by the D step. A hook is `fn(D, hp) -> None`, run after every D step
(WGAN's weight clipping). Both read their hyperparameters from `hp`, the trial's resolved dict.

Gradient norms follow compare_gan v1 (Lucic et al. 2018): ‖g‖ = sqrt(1e-4 + Σ g²) over every
input dimension of an example, and one interpolation coefficient α ~ U[0, 1] per example.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

Terms = dict[str, torch.Tensor]
Penalty = Callable[[nn.Module, torch.Tensor, torch.Tensor, Mapping[str, Any]], Terms]
Hook = Callable[[nn.Module, Mapping[str, Any]], None]

NORM_EPS = 1e-4  # compare_gan: slopes = sqrt(0.0001 + Σ grad²)


def _grad_norm(outputs: torch.Tensor, inputs: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    (grad,) = torch.autograd.grad(outputs.sum(), inputs, create_graph=True)
    return (eps + grad.flatten(1).pow(2).sum(dim=1)).sqrt()  # (B,)


def _alpha(x: torch.Tensor) -> torch.Tensor:
    return torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype)  # (B, 1, 1, 1)


def wgangp_penalty(D: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, hp: Mapping[str, Any]) -> Terms:
    """Gulrajani et al.: λ E (‖∇ D_logit(x̂)‖₂ - 1)², x̂ = x + α (G(z) - x), α ~ U[0, 1] per example."""
    x_hat = (x_real + _alpha(x_real) * (x_fake.detach() - x_real)).requires_grad_(True)
    norm = _grad_norm(D(x_hat), x_hat)
    gp = ((norm - 1.0) ** 2).mean()
    return {"loss": hp["gp_lambda"] * gp, "gp": gp, "grad_norm": norm.mean().detach()}


def dragan_perturb(x: torch.Tensor) -> torch.Tensor:
    """DRAGAN's perturbed batch as compare_gan (and Kodali et al.'s code) made it:
    x_p = x + 0.5 · std(x) · U[0, 1), with std over the whole batch (numpy's, ddof = 0).
    The noise is uniform on [0, 1), not centred: x_p ≥ x everywhere (the paper writes N(0, cI))."""
    return x + 0.5 * x.std(unbiased=False) * torch.rand_like(x)


def dragan_penalty(D: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, hp: Mapping[str, Any]) -> Terms:
    """Kodali et al. as compare_gan ran it: λ E (‖∇ sigmoid(D_logit(x̂))‖₂ - 1)² with
    x̂ = x + α (x_p - x), α ~ U[0, 1] per example, x_p = `dragan_perturb(x)`. The gradient is of
    the sigmoid output, not the logit. Random draws in order: the noise of x_p, then α."""
    x_p = dragan_perturb(x_real)
    x_hat = (x_real + _alpha(x_real) * (x_p - x_real)).requires_grad_(True)
    norm = _grad_norm(torch.sigmoid(D(x_hat)), x_hat)
    gp = ((norm - 1.0) ** 2).mean()
    return {"loss": hp["gp_lambda"] * gp, "gp": gp, "grad_norm": norm.mean().detach()}


def r1_penalty(D: nn.Module, x_real: torch.Tensor, x_fake: torch.Tensor, hp: Mapping[str, Any]) -> Terms:
    """Mescheder et al. 2018, R1: (γ/2) E ‖∇_x D_logit(x)‖₂² on real data only (no ε, no centring)."""
    x = x_real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    sq = grad.flatten(1).pow(2).sum(dim=1)  # (B,)
    r1 = sq.mean()
    return {"loss": 0.5 * hp["r1_gamma"] * r1, "r1": r1, "grad_norm": sq.sqrt().mean().detach()}


def clip_weights(D: nn.Module, hp: Mapping[str, Any]) -> None:
    """WGAN: clip every D weight to [-c, c] after each D step (Arjovsky et al.; compare_gan clips all variables)."""
    c = hp["clip"]
    with torch.no_grad():
        for p in D.parameters():
            p.clamp_(-c, c)
