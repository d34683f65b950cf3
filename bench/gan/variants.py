"""The variant registry: every GAN is a recipe, and no code outside this file branches on a name.

A recipe names a loss (losses.py), an optional penalty and after-D-step hook (penalties.py),
per-step state carried explicitly (BEGAN's k_t), the D role it needs from the architecture
(`discriminator`, `autoencoder` for BEGAN, `encoder` for the VAE, `none` for IMLE), D options applied to any
architecture (d_options.py: spectral normalization, minibatch discrimination), and its step
strategies (steps.py: the GAN step, the unrolled G step, the VAE step). Adding a variant touches
this file only, plus a new function where a loss, penalty or step is new.

Search spaces and paper defaults follow PROTOCOL.md (Lucic et al. 2018, compare_gan v1): "wide"
and "narrow" spaces, and the authors' default setting as trial 0 of every search. Where the
released code and the printed paper differ, the plain name is the code's form and the paper's
form is a separately named entry (`lsgan_logit`, `began_clipped`).

Variants beyond the paper, with ranges in its spirit (wide: the paper's optimizer ranges and a
decade either side of the source's value; narrow: β₁ 0.5, one D step, a decade of the weight):
  hinge         Lim & Ye 2017 / Miyato et al. 2018. Default lr 2e-4, β₁ 0.5, 1 D step (Miyato's setting C).
  ns_gan_r1     Mescheder et al. 2018, ns_gan + (γ/2) E‖∇D(x)‖² on real data. Default γ 10,
                lr 1e-4, β₁ 0.5, no BN in D (a per-example gradient penalty, as wgan_gp);
                γ: wide 10^U[-1, 2], narrow 10^U[-1, 1], like the paper's λ.
  unrolled_gan  Metz et al. 2017, ns_gan whose G step sees D unrolled k steps. Default k 5,
                lr 1e-4, β₁ 0.5 (their settings); k: wide {1, 5, 10}, narrow 5.
  mbd_gan       Salimans et al. 2016, ns_gan with minibatch discrimination in D. Default 100
                kernels of dimension 5, lr 3e-4, β₁ 0.5 (their code); wide {50, 100, 200} x {5, 10}.
  ns_gan_ha     Salimans et al. 2016, sec. 3.3: ns_gan + historical averaging, λ ‖θ - (1/t) Σᵢ θᵢ‖² on
                G's and on D's parameters (penalties.historical_averaging). The paper gives no λ and
                its code (openai/improved-gan, as read: imagenet/build_model.py and the train_*
                scripts) has no such term; default λ 1.0 is torchgan's HistoricalAverage default;
                wide 10^U[-2, 2], narrow 10^U[-1, 1], like R1's γ. Optimizer defaults as mbd_gan's
                (the same paper's code): lr 3e-4, β₁ 0.5.
  imle          Li & Malik 2018, Implicit Maximum Likelihood Estimation: G alone, no D (d_role
                "none"); each data point pulls its nearest of m = imle_samples x B samples towards it
                (steps.imle_step). Defaults from the reference code (Ke Li's imle.py, as read in a
                public copy): 10 samples per data point (num_samples_factor), lr 1e-3, Adam β₁ 0.5,
                z ~ N(0, I) (normal_latent, as the VAE). imle_samples: wide {1, 3, 10, 30} (the decade
                either side of 10, less its top, 100 samples per point, which costs a hundred G
                forward passes per step), narrow {5, 10, 20}; learning rate as every variant's.
                disc_iters and d_batchnorm are fixed (1, False): there is no D.
  sn_<loss>     Miyato et al. 2018 / Kurach et al. 2019: the loss's recipe with spectral
                normalization in D. BN in D off by default and in the narrow space (SN replaces it).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import torch
from torch import nn

from bench.gan import d_options, losses, penalties, steps
from bench.search.space import Choice, Fixed, Float, Space

# Shared by every variant: the optimizer and D's batch norm (PROTOCOL.md, "Hyperparameter search").
COMMON_WIDE: dict = {
    "learning_rate": Float(1e-5, 1e-2, log=True),
    "beta1": Float(0.0, 1.0),
    "disc_iters": Choice((1, 5)),
    "d_batchnorm": Choice((True, False)),
}
COMMON_NARROW: dict = {
    "learning_rate": Float(1e-4, 1e-3, log=True),
    "beta1": Fixed(0.5),
    "disc_iters": Fixed(1),
    "d_batchnorm": Choice((True, False)),
}


def uniform_latent(u: torch.Tensor) -> torch.Tensor:
    """The GANs' prior: z ~ U(-1, 1)^z_dim, the draws themselves."""
    return u


def normal_latent(u: torch.Tensor) -> torch.Tensor:
    """N(0, I) from U(-1, 1) draws by the inverse CDF, √2 erfinv(u): the VAE's prior, sampled from
    the same fixed evaluation draws as every other variant."""
    return math.sqrt(2.0) * torch.erfinv(u.clamp(-1.0 + 1e-6, 1.0 - 1e-6))


class NoD(nn.Module):
    """The D of a variant that has none (IMLE's d_role "none"): no parameters, so no D optimizer is
    made; it maps a batch to one zero per example, so code that runs any D on G's output (the
    memory estimate of study/fits.py) runs unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(len(x))  # (B,)


# How each D role is built from an architecture (models.Architecture fields).
D_ROLES: dict[str, Callable[..., nn.Module | None]] = {
    "discriminator": lambda arch, shape, width, batchnorm, z_dim: arch.discriminator(shape, width, batchnorm),
    "autoencoder": lambda arch, shape, width, batchnorm, z_dim: arch.autoencoder and arch.autoencoder(shape, width, batchnorm),
    "encoder": lambda arch, shape, width, batchnorm, z_dim: arch.encoder and arch.encoder(shape, width, batchnorm, z_dim),
    # No D at all (IMLE): a module with no parameters, so every architecture fits.
    "none": lambda arch, shape, width, batchnorm, z_dim: NoD(),
}


@dataclass(frozen=True)
class Variant:
    name: str
    doc: str  # one line for `bench list`
    defaults: Mapping[str, Any]  # the paper's default setting, trial 0
    wide: Space
    narrow: Space
    loss: losses.Loss | None = None  # None only where the steps need no GAN loss (the VAE)
    penalty: penalties.Penalty | None = None
    after_d_step: penalties.Hook | None = None
    # A penalty on each player's own parameters (historical averaging); its per-player state is
    # kept in the recipe state under param_penalty.key("d"/"g") by the training step.
    param_penalty: penalties.ParamPenalty | None = None
    # Per-step loss state carried explicitly (BEGAN's k_t): the initial value, and
    # update(state, d_terms, hp) -> new state, called after every D step.
    initial_state: Mapping[str, Any] = field(default_factory=dict)
    update_state: Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None
    d_role: str = "discriminator"  # which network of the architecture plays D: a key of D_ROLES
    d_options: tuple[d_options.DOption, ...] = ()  # applied to D after it is built, in order
    d_step: steps.StepFn | None = steps.adversarial_d_step  # None: no separate D update (the VAE)
    g_step: steps.StepFn = steps.adversarial_g_step
    fresh_z_for_g: bool = False  # compare_gan resampled z before the G step for WGAN-GP only
    latent: Callable[[torch.Tensor], torch.Tensor] = uniform_latent  # U(-1, 1) draws -> G's prior
    g_activation: str = ""  # G's hidden activation: "" = the architecture's own; the VAE's decoder asks for "relu"
    # Trial 0 in the narrow space where it differs from `defaults` (compare_gan's params.py set some
    # defaults per range: the VAE's discriminator_batchnorm is False in the narrow range).
    narrow_defaults: Mapping[str, Any] = field(default_factory=dict)

    def space(self, kind: str, fixed: Mapping[str, Any] | None = None) -> Space:
        """The search space `kind` ("wide" or "narrow"), with the study's `[study] fixed` values held."""
        base = {"wide": self.wide, "narrow": self.narrow}[kind]
        return {**base, **{k: Fixed(v) for k, v in (fixed or {}).items()}}

    def defaults_in(self, kind: str, fixed: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Trial 0's setting in the search space `kind` ("wide" or "narrow"), `[study] fixed` values held."""
        return {**self.defaults, **(self.narrow_defaults if kind == "narrow" else {}), **(fixed or {})}

    def fixed_problem(self, fixed: Mapping[str, Any]) -> str | None:
        """Why `[study] fixed` cannot apply to this variant (a name it does not have, a value of the
        wrong kind or outside a choice), or None."""
        for k, v in fixed.items():
            p = self.wide.get(k)
            if p is None:
                return f"{k} is not a hyperparameter of {self.name} (its hyperparameters: {', '.join(self.wide)})"
            if isinstance(p, Choice) and v not in p.values:
                return f"{k} = {v!r} is not one of {self.name}'s values {list(p.values)}"
            if isinstance(p, Float) and (isinstance(v, (bool, str)) or not p.low <= v <= p.high):
                return f"{k} = {v!r} is outside {self.name}'s widest range [{p.low:g}, {p.high:g}]"
        return None

    def build_g(self, arch: Any, z_dim: int, shape: tuple[int, int, int], width: float) -> nn.Module:
        """G from the architecture's generator builder, with this variant's hidden activation."""
        act = self.g_activation or arch.g_activations[0]
        if act not in arch.g_activations:
            from bench.errors import ConfigError

            raise ConfigError(f"variant {self.name!r} needs a generator with {act} activations but architecture "
                              f"{arch.name!r} builds one with {', '.join(arch.g_activations)}")
        return arch.generator(z_dim, shape, width, activation=act)

    def build_d(self, arch: Any, shape: tuple[int, int, int], width: float, z_dim: int, hp: Mapping[str, Any]) -> nn.Module:
        """The network that plays D for this variant, with its D options applied."""
        D = D_ROLES[self.d_role](arch, shape, width, bool(hp["d_batchnorm"]), z_dim)
        if D is None:
            from bench.errors import ConfigError

            raise ConfigError(f"variant {self.name!r} needs an {self.d_role} but architecture {arch.name!r} has none")
        for option in self.d_options:
            D = option(D, hp)
        return D

    def recipe(self) -> dict[str, Any]:
        """The recipe by name, for the trial's records."""
        name = lambda f: None if f is None else f.__name__  # noqa: E731
        return {
            "loss": self.loss.name if self.loss else None, "penalty": name(self.penalty),
            "after_d_step": name(self.after_d_step), "update_state": name(self.update_state),
            "param_penalty": self.param_penalty.name if self.param_penalty else None,
            "d_role": self.d_role, "d_options": [f.__name__ for f in self.d_options],
            "d_step": name(self.d_step), "g_step": name(self.g_step), "fresh_z_for_g": self.fresh_z_for_g,
            "latent": name(self.latent), "g_activation": self.g_activation or "architecture's",
        }


VARIANTS: dict[str, Variant] = {}


def register(v: Variant) -> Variant:
    if v.name in VARIANTS:
        raise ValueError(f"variant {v.name!r} registered twice")
    missing = set(v.wide) ^ set(v.defaults)
    if missing or set(v.narrow) != set(v.wide):
        raise ValueError(f"variant {v.name!r}: defaults, wide and narrow spaces must name the same parameters ({sorted(missing)})")
    if not {"learning_rate", "beta1", "disc_iters", "d_batchnorm"} <= set(v.defaults):
        raise ValueError(f"variant {v.name!r}: every variant sets learning_rate, beta1, disc_iters and d_batchnorm")
    if v.d_role not in D_ROLES:
        raise ValueError(f"variant {v.name!r}: d_role {v.d_role!r} is not one of {', '.join(D_ROLES)}")
    uses_loss = v.d_step is steps.adversarial_d_step or v.g_step in (steps.adversarial_g_step, steps.unrolled_g_step)
    if uses_loss and v.loss is None:
        raise ValueError(f"variant {v.name!r}: its steps need a loss")
    if v.g_step is steps.unrolled_g_step and (v.penalty is not None or v.after_d_step is not None):
        raise ValueError(f"variant {v.name!r}: the unrolled D steps repeat the loss only; a penalty or hook would be left out")
    if v.param_penalty is not None and (v.d_step, v.g_step) != (steps.adversarial_d_step, steps.adversarial_g_step):
        raise ValueError(f"variant {v.name!r}: a param_penalty is added by the adversarial D and G steps only")
    VARIANTS[v.name] = v
    return v


def with_spectral_norm(base: Variant) -> Variant:
    """`sn_<name>`: the same recipe with spectral normalization in D; BN in D off by default and
    in the narrow space (the wide space keeps the choice)."""
    return dataclasses.replace(
        base, name=f"sn_{base.name}", doc=f"{base.name} with spectral normalization in D (Miyato et al. 2018)",
        d_options=(d_options.spectral_norm, *base.d_options),
        defaults={**base.defaults, "d_batchnorm": False},
        narrow={**base.narrow, "d_batchnorm": Fixed(False)},
    )


# --- The paper's seven GANs and the VAE baseline (PROTOCOL.md) ---

register(Variant(
    name="mm_gan",
    doc="minimax GAN: Goodfellow et al.'s saturating G loss E log(1 - D(G(z)))",
    loss=losses.minimax,
    defaults={"learning_rate": 5e-5, "beta1": 0.0, "disc_iters": 1, "d_batchnorm": True},
    wide=COMMON_WIDE, narrow=COMMON_NARROW,
))

register(Variant(
    name="ns_gan",
    doc="non-saturating GAN: G loss -E log D(G(z))",
    loss=losses.non_saturating,
    defaults={"learning_rate": 5e-5, "beta1": 0.0, "disc_iters": 1, "d_batchnorm": True},
    wide=COMMON_WIDE, narrow=COMMON_NARROW,
))

register(Variant(
    name="wgan",
    doc="Wasserstein GAN: critic loss, every D weight clipped to [-c, c] after each D step, Adam (as compare_gan ran it)",
    loss=losses.wasserstein,
    after_d_step=penalties.clip_weights,
    defaults={"learning_rate": 5e-5, "beta1": 0.5, "disc_iters": 5, "d_batchnorm": True, "clip": 0.01},
    wide={**COMMON_WIDE, "clip": Float(1e-3, 1.0, log=True)},
    narrow={**COMMON_NARROW, "clip": Float(1e-2, 1.0, log=True)},
))

register(Variant(
    name="wgan_gp",
    doc="WGAN-GP: Wasserstein loss + λ E(‖∇D(x̂)‖₂ - 1)² on interpolates, fresh z for G; no BN in D in the narrow space",
    loss=losses.wasserstein,
    penalty=penalties.wgangp_penalty,
    fresh_z_for_g=True,
    defaults={"learning_rate": 1e-4, "beta1": 0.5, "disc_iters": 5, "d_batchnorm": False, "gp_lambda": 10.0},
    wide={**COMMON_WIDE, "gp_lambda": Float(0.1, 100.0, log=True)},
    narrow={**COMMON_NARROW, "d_batchnorm": Fixed(False), "gp_lambda": Float(0.1, 10.0, log=True)},
))

register(Variant(
    name="lsgan",
    doc="least-squares GAN on the sigmoid output D = sigmoid(logit), as compare_gan ran it",
    loss=losses.least_squares,
    defaults={"learning_rate": 2e-4, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": True},
    wide=COMMON_WIDE, narrow=COMMON_NARROW,
))

register(Variant(
    name="lsgan_logit",
    doc="least-squares GAN on the raw output, as Mao et al. printed it (the corrected form of lsgan)",
    loss=losses.least_squares_logit,
    defaults={"learning_rate": 2e-4, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": True},
    wide=COMMON_WIDE, narrow=COMMON_NARROW,
))

register(Variant(
    name="dragan",
    doc="DRAGAN: ns_gan + λ E(‖∇ sigmoid(D(x̂))‖₂ - 1)², x̂ between x and x + 0.5 std(x) U[0,1) (compare_gan's uncentred noise)",
    loss=losses.non_saturating,
    penalty=penalties.dragan_penalty,
    defaults={"learning_rate": 1e-4, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": True, "gp_lambda": 10.0},
    wide={**COMMON_WIDE, "gp_lambda": Float(0.1, 100.0, log=True)},
    narrow={**COMMON_NARROW, "d_batchnorm": Fixed(False), "gp_lambda": Float(0.1, 10.0, log=True)},
))

BEGAN_SPACES = dict(
    defaults={"learning_rate": 1e-4, "beta1": 0.5, "disc_iters": 5, "d_batchnorm": False,
              "began_lambda_k": 1e-3, "began_gamma": 0.75},
    wide={**COMMON_WIDE, "began_lambda_k": Float(1e-4, 1e-2, log=True), "began_gamma": Float(0.0, 1.0)},
    narrow={**COMMON_NARROW, "began_lambda_k": Fixed(1e-3), "began_gamma": Float(0.6, 0.9)},
)

register(Variant(
    name="began",
    doc="BEGAN: auto-encoder D, L(x) - k_t L(G(z)); k_t unclipped as compare_gan ran it; convergence M logged",
    loss=losses.began, d_role="autoencoder",
    initial_state={"k": 0.0}, update_state=losses.began_update,
    **BEGAN_SPACES,
))

register(Variant(
    name="began_clipped",
    doc="BEGAN with k_t clipped to [0, 1] as Berthelot et al. printed it (the corrected form of began)",
    loss=losses.began, d_role="autoencoder",
    initial_state={"k": 0.0}, update_state=losses.began_update_clipped,
    **BEGAN_SPACES,
))

register(Variant(
    name="vae",
    doc="VAE baseline as compare_gan ran it: decoder = the G network with ReLU, encoder = the D trunk; Bernoulli likelihood + KL, z ~ N(0, I)",
    d_role="encoder", d_step=None, g_step=steps.vae_step, latent=normal_latent,
    g_activation="relu",  # compare_gan v1 VAE.decoder: tf.nn.relu where its GAN generator has lrelu
    # One update per step (disc_iters is fixed at 1); d_batchnorm is BN in the encoder, as in compare_gan,
    # whose params.py defaults it to True in the wide range and False in the narrow one (VAEHyperParams).
    defaults={"learning_rate": 5e-5, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": True},
    narrow_defaults={"d_batchnorm": False},
    wide={**COMMON_WIDE, "disc_iters": Fixed(1)},
    narrow=COMMON_NARROW,
))

# --- Beyond the paper: later losses and the seed's remedies for mode collapse ---

register(Variant(
    name="hinge",
    doc="hinge loss: D E max(0, 1 - D(x)) + E max(0, 1 + D(G(z))), G -E D(G(z))",
    loss=losses.hinge,
    defaults={"learning_rate": 2e-4, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": True},
    wide=COMMON_WIDE, narrow=COMMON_NARROW,
))

register(Variant(
    name="ns_gan_r1",
    doc="ns_gan + R1 penalty (γ/2) E‖∇D(x)‖² on real data (Mescheder et al. 2018)",
    loss=losses.non_saturating,
    penalty=penalties.r1_penalty,
    defaults={"learning_rate": 1e-4, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": False, "r1_gamma": 10.0},
    wide={**COMMON_WIDE, "r1_gamma": Float(0.1, 100.0, log=True)},
    narrow={**COMMON_NARROW, "d_batchnorm": Fixed(False), "r1_gamma": Float(0.1, 10.0, log=True)},
))

register(Variant(
    name="unrolled_gan",
    doc="unrolled GAN: ns_gan whose G step differentiates through k unrolled D steps; D itself unchanged (Metz et al. 2017)",
    loss=losses.non_saturating,
    g_step=steps.unrolled_g_step,
    defaults={"learning_rate": 1e-4, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": True, "unroll_steps": 5},
    wide={**COMMON_WIDE, "unroll_steps": Choice((1, 5, 10))},
    narrow={**COMMON_NARROW, "unroll_steps": Fixed(5)},
))

register(Variant(
    name="mbd_gan",
    doc="ns_gan with minibatch discrimination before D's output layer (Salimans et al. 2016)",
    loss=losses.non_saturating,
    d_options=(d_options.minibatch_discrimination,),
    defaults={"learning_rate": 3e-4, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": True,
              "mbd_kernels": 100, "mbd_kernel_dim": 5},
    wide={**COMMON_WIDE, "mbd_kernels": Choice((50, 100, 200)), "mbd_kernel_dim": Choice((5, 10))},
    narrow={**COMMON_NARROW, "mbd_kernels": Fixed(100), "mbd_kernel_dim": Fixed(5)},
))

register(Variant(
    name="ns_gan_ha",
    doc="ns_gan + historical averaging λ‖θ - (1/t) Σᵢ θᵢ‖² on G's and D's parameters (Salimans et al. 2016)",
    loss=losses.non_saturating,
    param_penalty=penalties.historical_averaging,
    defaults={"learning_rate": 3e-4, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": True, "ha_lambda": 1.0},
    wide={**COMMON_WIDE, "ha_lambda": Float(1e-2, 1e2, log=True)},
    narrow={**COMMON_NARROW, "ha_lambda": Float(1e-1, 1e1, log=True)},
))

register(Variant(
    name="imle",
    doc="IMLE baseline (Li & Malik 2018): no D; each data point pulls its nearest of m generated samples towards it (L2 in pixels)",
    d_role="none", d_step=None, g_step=steps.imle_step, latent=normal_latent,
    defaults={"learning_rate": 1e-3, "beta1": 0.5, "disc_iters": 1, "d_batchnorm": False, "imle_samples": 10},
    wide={**COMMON_WIDE, "disc_iters": Fixed(1), "d_batchnorm": Fixed(False), "imle_samples": Choice((1, 3, 10, 30))},
    narrow={**COMMON_NARROW, "d_batchnorm": Fixed(False), "imle_samples": Choice((5, 10, 20))},
))

# Spectral normalization in D for every GAN loss (weight clipping's wgan excluded: SN replaces it).
for _base in ("mm_gan", "ns_gan", "wgan_gp", "lsgan", "dragan", "hinge", "ns_gan_r1"):
    register(with_spectral_norm(VARIANTS[_base]))
