"""Step strategies: how one D update and one G update go, for each family of variants.

A step is `fn(variant, nets, x_real, z, state, hp) -> terms`. The training loop (train.py) calls
the variant's `d_step` once per training step and its `g_step` once every `disc_iters` steps;
the strategies read the recipe's loss, penalty and hook, so a variant never needs code of its own.

- `adversarial_d_step` / `adversarial_g_step`: the GAN step of compare_gan v1 (Lucic et al. 2018).
  D sees a real batch and G(z) (no gradient into G), plus the recipe's penalty, then the hook
  (WGAN's clipping) runs; G minimises the recipe's G loss on D(G(z)). Where the recipe has a
  penalty on a player's own parameters (historical averaging), each player's loss carries it.
- `unrolled_g_step`: Metz et al. 2017, "Unrolled generative adversarial networks". G minimises its
  loss against a copy of D advanced k = hp["unroll_steps"] D-optimizer steps on the current real
  batch and G(z), differentiating through the unrolled updates (the surrogate loss
  f_K(θ_G, θ_D) of their eq. 4). The unrolled steps copy D's Adam moments and repeat its update
  rule, with the second moment treated as a constant (detached) so the second derivative stays
  finite where a gradient is zero; D's own parameters, buffers and optimizer state are untouched.
- `imle_step`: Implicit Maximum Likelihood Estimation (Li & Malik 2018), a baseline with no D.
  For the real batch of B points it draws m = hp["imle_samples"] x B samples from G without
  gradient, in chunks of B as the reference code does (so BN sees batches of B), matches every
  data point to its nearest sample (L2 in pixel space, losses.imle_nearest) and takes one Adam
  step of G on the mean squared distance between the points and G at the matched latents
  (losses.imle). The reference code (Ke Li's imle.py) recomputes the matching every 5 epochs over
  the whole data set, perturbs the matched z by 0.01 N(0, I) and adds weight decay 1e-5; here the
  matching is per batch, as the paper's Algorithm 1 states it, with neither of the two extras.
- `vae_step`: the VAE baseline (Kingma & Welling). D is the Gaussian encoder, G the Bernoulli
  decoder; one Adam step of each on the negative ELBO of the real batch (compare_gan v1 ran one
  Adam over both; Adam is per-parameter, so two with the same settings are the same update).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol

import torch
from torch import nn
from torch.func import functional_call

from bench.gan import losses

Terms = dict[str, torch.Tensor]


class Recipe(Protocol):
    """What a step reads of its variant (variants.Variant is one): the loss, penalty and hook."""

    loss: losses.Loss | None
    penalty: Callable[..., Terms] | None
    after_d_step: Callable[..., None] | None
    param_penalty: Any  # penalties.ParamPenalty | None, on the updated player's own parameters
    latent: Callable[[torch.Tensor], torch.Tensor]  # U(-1, 1) draws -> G's prior (IMLE draws its own samples)


@dataclass
class Nets:
    """What a step may touch: the two networks and their optimizers. A variant with no D (IMLE's
    d_role "none") has a module without parameters as D and no D optimizer."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None


StepFn = Callable[[Recipe, Nets, torch.Tensor, torch.Tensor, Mapping[str, Any], Mapping[str, Any]], Terms]


def param_penalty_terms(variant: Recipe, player: str, net: nn.Module, state: Mapping[str, Any],
                        hp: Mapping[str, Any]) -> Terms:
    """The recipe's penalty on the player's own parameters, prefixed param_penalty_ (the weighted
    penalty under param_penalty_loss, to be added to the player's loss); {} when it has none.
    The player's "loss" term stays its adversarial loss alone, as with D's penalty."""
    pp = variant.param_penalty
    if pp is None:
        return {}
    return {f"param_penalty_{k}": v for k, v in pp.penalty(net, state[pp.key(player)], hp).items()}


def adversarial_d_step(variant: Recipe, nets: Nets, x_real: torch.Tensor, z: torch.Tensor,
                       state: Mapping[str, Any], hp: Mapping[str, Any]) -> Terms:
    with torch.no_grad():
        x_fake = nets.G(z)  # (B, C, H, W)
    terms = variant.loss.d(nets.D(x_real), nets.D(x_fake), state)
    loss = terms["loss"]
    if variant.penalty is not None:
        p_terms = variant.penalty(nets.D, x_real, x_fake, hp)
        loss = loss + p_terms["loss"]
        terms = {**terms, **{f"penalty_{k}": v for k, v in p_terms.items()}}
    if variant.param_penalty is not None:
        terms = {**terms, **param_penalty_terms(variant, "d", nets.D, state, hp)}
        loss = loss + terms["param_penalty_loss"]
    nets.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    nets.opt_d.step()
    if variant.after_d_step is not None:
        variant.after_d_step(nets.D, hp)
    return terms


def adversarial_g_step(variant: Recipe, nets: Nets, x_real: torch.Tensor, z: torch.Tensor,
                       state: Mapping[str, Any], hp: Mapping[str, Any]) -> Terms:
    terms = {**variant.loss.g(nets.D(nets.G(z)), state), **param_penalty_terms(variant, "g", nets.G, state, hp)}
    loss = terms["loss"] + terms["param_penalty_loss"] if variant.param_penalty is not None else terms["loss"]
    nets.opt_g.zero_grad(set_to_none=True)
    loss.backward(inputs=list(nets.G.parameters()))  # no gradient left in D
    nets.opt_g.step()
    return terms


def unrolled_g_step(variant: Recipe, nets: Nets, x_real: torch.Tensor, z: torch.Tensor,
                    state: Mapping[str, Any], hp: Mapping[str, Any]) -> Terms:
    D, k = nets.D, int(hp["unroll_steps"])
    names = [n for n, _ in D.named_parameters()]
    params = [p for _, p in D.named_parameters()]
    buffers = {n: b.clone() for n, b in D.named_buffers()}  # BN statistics move on copies only
    group = nets.opt_d.param_groups[0]
    lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
    adam = [nets.opt_d.state.get(p, {}) for p in params]
    m = [s["exp_avg"].clone() if s else torch.zeros_like(p) for s, p in zip(adam, params)]
    v = [s["exp_avg_sq"].clone() if s else torch.zeros_like(p) for s, p in zip(adam, params)]
    # Adam's step count stays a tensor: with fused Adam it lives on the device, and reading it would sync.
    t = [s["step"].to(p.device, torch.float32) if s else torch.zeros((), device=p.device) for s, p in zip(adam, params)]

    def d_out(weights: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(D, {**dict(zip(names, weights)), **buffers}, (x,))

    x_fake = nets.G(z)  # (B, C, H, W), with gradient into G through every unrolled step
    fast = list(params)
    for _ in range(k):
        d_loss = variant.loss.d(d_out(fast, x_real), d_out(fast, x_fake), state)["loss"]
        grads = torch.autograd.grad(d_loss, fast, create_graph=True, allow_unused=True)
        new = []
        for i, (w, g) in enumerate(zip(fast, grads)):
            g = torch.zeros_like(w) if g is None else g
            t[i] = t[i] + 1.0  # never in place: t[i] may be the optimizer's own step tensor
            m[i] = beta1 * m[i] + (1.0 - beta1) * g
            v[i] = beta2 * v[i] + (1.0 - beta2) * g.detach() ** 2
            m_hat, v_hat = m[i] / (1.0 - beta1 ** t[i]), v[i] / (1.0 - beta2 ** t[i])
            new.append(w - lr * m_hat / (v_hat.sqrt() + eps))
        fast = new
    terms = variant.loss.g(d_out(fast, x_fake), state)
    nets.opt_g.zero_grad(set_to_none=True)
    terms["loss"].backward(inputs=list(nets.G.parameters()))
    nets.opt_g.step()
    return terms


def vae_step(variant: Recipe, nets: Nets, x_real: torch.Tensor, z: torch.Tensor,
             state: Mapping[str, Any], hp: Mapping[str, Any]) -> Terms:
    mu, sigma = nets.D(x_real)  # (B, z_dim) each
    z_q = mu + sigma * torch.randn_like(mu)  # the reparameterisation trick
    terms = losses.bernoulli_elbo(x_real, nets.G(z_q), mu, sigma)
    nets.opt_d.zero_grad(set_to_none=True)
    nets.opt_g.zero_grad(set_to_none=True)
    terms["loss"].backward()
    nets.opt_d.step()
    nets.opt_g.step()
    return terms


def imle_step(variant: Recipe, nets: Nets, x_real: torch.Tensor, z: torch.Tensor,
              state: Mapping[str, Any], hp: Mapping[str, Any]) -> Terms:
    B = len(x_real)
    m = int(hp["imle_samples"]) * B
    with torch.no_grad():
        z_pool = variant.latent(torch.rand(m, z.shape[1], device=z.device) * 2 - 1)  # (m, z_dim)
        pool = torch.cat([nets.G(z_pool[i : i + B]) for i in range(0, m, B)])  # (m, C, H, W)
        nearest = losses.imle_nearest(x_real, pool)  # (B,)
    terms = losses.imle(x_real, nets.G(z_pool[nearest]), nearest, m)
    nets.opt_g.zero_grad(set_to_none=True)
    terms["loss"].backward()
    nets.opt_g.step()
    return terms
