"""Variant step cost: milliseconds per training step of every registered variant, side by side.

Each variant's networks are built as a trial builds them (`train.build_nets`: the quick study's
infogan at width 0.25, its paper default hyperparameters) and `train.train_step` is timed on a
fixed real batch of digit-sized images (64 x 1 x 28 x 28): D steps with a G step every
`disc_iters`, so the figure is what a study pays per D step. All variants run in one process,
interleaved and repeated (timing.side_by_side); `ratio` is each variant's median over ns_gan's.
Data loading and evaluation are left out (the loop benchmark covers the harness around the step).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from bench.benchmarks import benchmark
from bench.benchmarks.timing import median, side_by_side
from bench.gan.variants import VARIANTS
from bench.trial import train

SHAPE, BATCH, Z_DIM = (1, 28, 28), 64, 64


def _stepper(name: str, width: float, steps: int):
    v = VARIANTS[name]
    hp = dict(v.defaults)
    torch.manual_seed(0)
    nets = train.build_nets(v, "infogan", SHAPE, width, Z_DIM, hp, torch.device("cpu"))
    x_real = torch.rand(BATCH, *SHAPE)
    state = dict(v.initial_state)
    n = max(steps, int(hp["disc_iters"]))  # at least one G step

    def run() -> float:
        nonlocal state
        t0 = time.perf_counter()
        for step in range(1, n + 1):
            state, terms = train.train_step(v, nets, hp, state, step, x_real, lambda: v.latent(torch.rand(BATCH, Z_DIM) * 2 - 1))
        float(terms["g_loss"])  # wait for the work
        return (time.perf_counter() - t0) / n

    return run


@benchmark("variant_step_cost")
def variant_step_cost(quick: bool) -> dict[str, Any]:
    width, steps, repeats = (0.125, 5, 1) if quick else (0.25, 10, 2)
    times = side_by_side({name: _stepper(name, width, steps) for name in VARIANTS}, repeats, warmup=1)
    ms = {name: round(1000 * median(t), 2) for name, t in times.items()}
    base = ms["ns_gan"]
    return {
        "ratio": {name: round(m / base, 2) for name, m in ms.items()},  # over ns_gan, same run
        "ns_gan_ms_per_step": base,
        "detail": {"ms_per_step": ms, "width": width, "batch": BATCH, "steps_per_repeat": steps, "repeats": repeats,
                   "architecture": "infogan", "hparams": "each variant's paper default"},
        "command": "python -m bench.benchmarks variant_step_cost",
    }
