"""Penalties on the discriminator and per-step hooks (compare_gan's penalty library).

A penalty is `fn(D, x_real, x_fake, hp) -> terms` with the weighted penalty under "loss"; it is
added to the D loss by the D step. A hook is `fn(D, hp) -> None`, run after every D step
(WGAN's weight clipping). Both read their hyperparameters from `hp`, the trial's resolved dict.
A `ParamPenalty` (historical averaging) penalises a player's own parameters, G's or D's, with
its running state passed in and out of the training step explicitly.

Gradient norms follow compare_gan v1 (Lucic et al. 2018): ‖g‖ = sqrt(1e-4 + Σ g²) over every
input dimension of an example, and one interpolation coefficient α ~ U[0, 1] per example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

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


# --- Penalties on a player's own parameters, with their state carried explicitly ---


class ParamMean(NamedTuple):
    """The running mean (1/t) Σᵢ θᵢ of a player's parameters over its t updates so far, on the
    parameters' device. `t` is a host int (it only counts), so keeping the mean needs no sync."""

    t: int
    mean: tuple[torch.Tensor, ...]


def track_mean(entry: ParamMean | None, module: nn.Module) -> ParamMean:
    """The mean with the current parameters θ_t counted in: m_t = m_{t-1} + (θ_t - m_{t-1}) / t.
    New tensors are returned (the old entry is left as it was): state goes in and out."""
    params = [p.detach() for p in module.parameters()]
    if entry is None:
        return ParamMean(1, tuple(p.clone() for p in params))
    t = entry.t + 1
    return ParamMean(t, tuple(torch._foreach_lerp(list(entry.mean), params, 1.0 / t)))


def historical_average(module: nn.Module, entry: ParamMean, hp: Mapping[str, Any]) -> Terms:
    """Salimans et al. 2016, sec. 3.3: λ ‖θ - (1/t) Σᵢ₌₁ᵗ θ[i]‖², the squared distance of all of
    the player's parameters from their historical mean (which includes the current θ and is a
    constant of the update). λ = hp["ha_lambda"]."""
    sq = torch.stack([(p - m).pow(2).sum() for p, m in zip(module.parameters(), entry.mean)]).sum()
    return {"loss": hp["ha_lambda"] * sq, "distance": sq.detach().sqrt()}


@dataclass(frozen=True)
class ParamPenalty:
    """A penalty on a player's own parameters that any loss can take (`Variant.param_penalty`).
    Before each update of a player, the training step sets state[key(player)] =
    track(state.get(key(player)), net); the step adds penalty(net, that entry, hp) to the player's loss."""

    name: str
    track: Callable[[Any, nn.Module], Any]
    penalty: Callable[[nn.Module, Any, Mapping[str, Any]], Terms]

    def key(self, player: str) -> str:
        return f"{self.name}_{player}"


historical_averaging = ParamPenalty("historical_averaging", track_mean, historical_average)
