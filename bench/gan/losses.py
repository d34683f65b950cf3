"""GAN losses as pure functions of discriminator outputs (compare_gan's loss library).

Each loss is a pair: `d(real, fake, state) -> terms` and `g(fake, state) -> terms`, where `real`
and `fake` are the raw discriminator outputs (logits, shape (B,) or (B, 1); for BEGAN the
per-example reconstruction errors of the auto-encoder D) and `terms` is a dict of scalar tensors
with the optimised quantity under "loss" and every component named beside it so it can be
logged. `state` carries per-step state (BEGAN's k_t) explicitly; stateless losses ignore it, and
a state update is a pure function `update(state, d_terms, hp) -> state`. Batch means throughout,
as in PROTOCOL.md, which gives the forms compare_gan v1 (Lucic et al. 2018) ran.

Names tell the truth: `minimax` is Goodfellow et al.'s saturating G loss (mm_gan), `non_saturating`
the -log D(G(z)) form (ns_gan). Where the released code and the printed paper differ, the
code's form carries the plain name (`least_squares` on sigmoid outputs) and the paper's form a
qualified one (`least_squares_logit`).

The VAE baseline has no discriminator; its loss, `bernoulli_elbo`, is a pure function of the
data, the decoder's output and the encoder's posterior parameters. Nor has IMLE (Li & Malik
2018): `imle_nearest` matches data points to samples and `imle` is the distance it pulls shut.
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


def least_squares_d(real: torch.Tensor, fake: torch.Tensor, state: State = {}) -> Terms:
    """LSGAN as compare_gan ran it, on the sigmoid output D = sigmoid(logit):
    0.5 [E (D(x) - 1)² + E D(G(z))²]. (Mao et al. put the squares on an unbounded output.)"""
    d_real = (torch.sigmoid(_flat(real)) - 1.0).pow(2).mean()
    d_fake = torch.sigmoid(_flat(fake)).pow(2).mean()
    return {"loss": 0.5 * (d_real + d_fake), "d_real": d_real, "d_fake": d_fake}


def least_squares_g(fake: torch.Tensor, state: State = {}) -> Terms:
    """LSGAN G loss on the sigmoid output: 0.5 E (D(G(z)) - 1)²."""
    return {"loss": 0.5 * (torch.sigmoid(_flat(fake)) - 1.0).pow(2).mean()}


def least_squares_logit_d(real: torch.Tensor, fake: torch.Tensor, state: State = {}) -> Terms:
    """LSGAN as Mao et al. printed it (a = 0, b = c = 1) on the raw output: 0.5 [E (D(x) - 1)² + E D(G(z))²]."""
    d_real = (_flat(real) - 1.0).pow(2).mean()
    d_fake = _flat(fake).pow(2).mean()
    return {"loss": 0.5 * (d_real + d_fake), "d_real": d_real, "d_fake": d_fake}


def least_squares_logit_g(fake: torch.Tensor, state: State = {}) -> Terms:
    """Mao et al.'s G loss on the raw output: 0.5 E (D(G(z)) - 1)²."""
    return {"loss": 0.5 * (_flat(fake) - 1.0).pow(2).mean()}


def hinge_d(real: torch.Tensor, fake: torch.Tensor, state: State = {}) -> Terms:
    """Hinge D loss (Lim & Ye 2017; Miyato et al. 2018; Kurach et al. 2019):
    E max(0, 1 - D(x)) + E max(0, 1 + D(G(z))) on the raw output. Its G loss is wasserstein_g."""
    d_real = F.relu(1.0 - _flat(real)).mean()
    d_fake = F.relu(1.0 + _flat(fake)).mean()
    return {"loss": d_real + d_fake, "d_real": d_real, "d_fake": d_fake}


def began_d(real: torch.Tensor, fake: torch.Tensor, state: State = {}) -> Terms:
    """BEGAN D loss L(x) - k_t L(G(z)) (Berthelot et al. 2017), where the D outputs are the
    per-example L1 reconstruction errors of the auto-encoder, so L(v) is their batch mean
    (compare_gan: mean abs(AE(v) - v) over the batch and every pixel). k_t comes from `state`."""
    l_real = _flat(real).mean()
    l_fake = _flat(fake).mean()
    k = state.get("k", 0.0)
    return {"loss": l_real - k * l_fake, "l_real": l_real, "l_fake": l_fake}


def began_g(fake: torch.Tensor, state: State = {}) -> Terms:
    """BEGAN G loss: L(G(z)), the auto-encoder's reconstruction error on generated images."""
    return {"loss": _flat(fake).mean()}


def began_update(state: State, d_terms: Mapping[str, torch.Tensor], hp: Mapping[str, Any]) -> dict[str, Any]:
    """k_{t+1} = k_t + λ_k (γ L(x) - L(G(z))), unclipped as compare_gan ran it (the paper clips
    to [0, 1]: `began_update_clipped`). Also returns the convergence measure
    M = L(x) + |γ L(x) - L(G(z))| of this step under "convergence", so it is logged with k.
    L(x) and L(G(z)) are the D step's own (the order of Berthelot et al.'s Algorithm 1);
    compare_gan's hook measured both again after the step's updates, on the same x and z, a
    difference of one optimizer step that saves two forward passes per step."""
    l_real, l_fake = d_terms["l_real"].detach(), d_terms["l_fake"].detach()
    gamma = hp["began_gamma"]
    k = state.get("k", 0.0) + hp["began_lambda_k"] * (gamma * l_real - l_fake)
    return {"k": k, "convergence": l_real + (gamma * l_real - l_fake).abs()}


def began_update_clipped(state: State, d_terms: Mapping[str, torch.Tensor], hp: Mapping[str, Any]) -> dict[str, Any]:
    """As `began_update`, with k_t clipped to [0, 1] as in Berthelot et al.'s paper."""
    new = began_update(state, d_terms, hp)
    return {**new, "k": torch.as_tensor(new["k"]).clamp(0.0, 1.0)}


def bernoulli_elbo(x: torch.Tensor, x_rec: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor) -> Terms:
    """Negative ELBO of a VAE with a Bernoulli decoder and a Gaussian posterior (Kingma & Welling),
    as compare_gan v1 computed it:
      nll = -E_batch,channel Σ_{h,w} [x log p + (1 - x) log(1 - p)],  p = clip(x_rec, 1e-8, 1 - 1e-8)
      kl  =  E_batch 0.5 Σ_j [μ_j² + σ_j² - log(1e-8 + σ_j²) - 1]
    The code summed over the two spatial axes only and averaged over the channels (identical to
    the full sum for one channel). x, x_rec: (B, C, H, W) in [0, 1]; mu, sigma: (B, z_dim).
    The code's upper clip 1 - 1e-8 rounds to 1.0 in float32, where a saturated sigmoid would give
    log(1 - p) = -inf; the upper clip here is 1 - max(1e-8, the dtype's epsilon)."""
    p = x_rec.clamp(1e-8, 1.0 - max(1e-8, torch.finfo(x_rec.dtype).eps))
    log_lik = (x * p.log() + (1.0 - x) * (1.0 - p).log()).sum(dim=(2, 3))  # (B, C)
    nll = -log_lik.mean()
    kl = (0.5 * (mu.pow(2) + sigma.pow(2) - (1e-8 + sigma.pow(2)).log() - 1.0).sum(dim=1)).mean()
    return {"loss": nll + kl, "nll": nll, "kl": kl}


def imle_nearest(x: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """IMLE's matching (Li & Malik 2018, Algorithm 1): for every data point x_i, the index
    σ(i) = argmin_j ‖x_i - s_j‖₂ of its nearest sample, L2 in pixel space. x: (B, ...), samples:
    (m, ...) of the same shape per point; returns (B,) indices into samples. The lowest index wins
    a tie (argmin's rule)."""
    d = torch.cdist(x.reshape(len(x), -1).float(), samples.reshape(len(samples), -1).float())  # (B, m)
    return d.argmin(dim=1)


def imle(x: torch.Tensor, matched: torch.Tensor, nearest: torch.Tensor, m: int) -> Terms:
    """IMLE's loss: pull each data point's matched sample towards it,
      loss     = (1/(B P)) Σᵢ ‖G(z_σ(i)) - x_i‖²   (the reference code's MSELoss, P values per point)
      distance = (1/B) Σᵢ ‖G(z_σ(i)) - x_i‖₂      (logged: how far the data is from the model's samples)
      matched  = |{σ(i)}| / m                      (logged: the fraction of the m samples some point chose)
    x, matched: (B, ...) with matched[i] = G(z_σ(i)); nearest: (B,) the indices σ(i)."""
    diff = (matched - x).reshape(len(x), -1)  # (B, P)
    sq = diff.pow(2).sum(dim=1)  # (B,)
    chosen = torch.zeros(m, device=x.device).index_fill_(0, nearest, 1.0)
    return {"loss": sq.mean() / diff.shape[1], "distance": sq.detach().sqrt().mean(), "matched": chosen.mean()}


minimax = Loss("minimax", gan_d, minimax_g)
non_saturating = Loss("non_saturating", gan_d, non_saturating_g)
wasserstein = Loss("wasserstein", wasserstein_d, wasserstein_g)
least_squares = Loss("least_squares", least_squares_d, least_squares_g)
least_squares_logit = Loss("least_squares_logit", least_squares_logit_d, least_squares_logit_g)
hinge = Loss("hinge", hinge_d, wasserstein_g)
began = Loss("began", began_d, began_g)
