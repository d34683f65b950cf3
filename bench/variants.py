"""The variant registry: every GAN is a recipe of a loss, an optional penalty and an optional hook.

Adding a variant touches this file only (plus a new loss or penalty function if it needs one);
no code elsewhere branches on a variant's name. Search spaces and paper defaults follow
PROTOCOL.md (Lucic et al. 2018, compare_gan v1): "wide" and "narrow" spaces, and the authors'
default setting as trial 0 of every search.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from . import losses, penalties
from .space import Choice, Fixed, Float, Space

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


@dataclass(frozen=True)
class Variant:
    name: str
    doc: str  # one line for `bench list`
    loss: losses.Loss
    defaults: Mapping[str, Any]  # the paper's default setting, trial 0
    wide: Space
    narrow: Space
    penalty: penalties.Penalty | None = None
    after_d_step: penalties.Hook | None = None
    # Per-step loss state carried explicitly (BEGAN's k_t): the initial value, and
    # update(state, d_terms, hp) -> new state, called after every D step.
    initial_state: Mapping[str, Any] = field(default_factory=dict)
    update_state: Callable[[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]] | None = None

    def space(self, kind: str) -> Space:
        return {"wide": self.wide, "narrow": self.narrow}[kind]


VARIANTS: dict[str, Variant] = {}


def register(v: Variant) -> Variant:
    if v.name in VARIANTS:
        raise ValueError(f"variant {v.name!r} registered twice")
    missing = set(v.wide) ^ set(v.defaults)
    if missing or set(v.narrow) != set(v.wide):
        raise ValueError(f"variant {v.name!r}: defaults, wide and narrow spaces must name the same parameters ({sorted(missing)})")
    VARIANTS[v.name] = v
    return v


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
    doc="WGAN-GP: Wasserstein loss + λ E(‖∇D(x̂)‖₂ - 1)² on interpolates; no batch norm in D in the narrow space",
    loss=losses.wasserstein,
    penalty=penalties.wgangp_penalty,
    defaults={"learning_rate": 1e-4, "beta1": 0.5, "disc_iters": 5, "d_batchnorm": False, "gp_lambda": 10.0},
    wide={**COMMON_WIDE, "gp_lambda": Float(0.1, 100.0, log=True)},
    narrow={**COMMON_NARROW, "d_batchnorm": Fixed(False), "gp_lambda": Float(0.1, 10.0, log=True)},
))
