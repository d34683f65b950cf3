"""Training-loop benchmarks: (a) the harness's overhead against a bare PyTorch loop.

`harness_overhead` runs `train.run_trial` (the loop every study uses: the variant recipe, the
device-resident BatchStream, loss terms accumulated on the device and read back every
`log_every` steps into the append-only log, a checkpoint and a sample grid at the end) and, side
by side in the same process, `bare_loop` below: the same InfoGAN networks (models.ARCHITECTURES),
the same digits5k images on the device, the same batch, optimiser, loss and number of steps,
written as plain PyTorch with no harness code at all. Evaluation (FID) is timed separately and
left out of the harness side: it is a metric's cost, benchmarked by the FID-path benchmark, not
loop overhead. The quick study's setting is measured: ns_gan at its paper default (lr 5e-5,
beta1 0, one D step per G step, BN in D), width 0.25, batch 64.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import data as data_mod
from .. import train
from ..config import load_study
from ..models import ARCHITECTURES
from ..variants import VARIANTS
from . import benchmark
from .timing import median, ratio, side_by_side


def bare_loop(images: torch.Tensor, architecture: str, width: float, z_dim: int, batch: int, steps: int,
              lr: float, beta1: float, device: torch.device, seed: int = 0) -> float:
    """Seconds for `steps` non-saturating GAN steps written by hand (setup included, as in a trial).

    One step: D on a real batch and on G(z) (no gradient into G), D's Adam step; then G's loss
    -log sigmoid(D(G(z'))) on fresh z', G's Adam step. Nothing is read back to the host.
    """
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    shape = tuple(images.shape[1:])
    arch = ARCHITECTURES[architecture]
    G = arch.generator(z_dim, shape, width).to(device)
    D = arch.discriminator(shape, width, True).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=(beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=(beta1, 0.999))
    x = images.to(device)
    order = torch.Generator().manual_seed(seed)
    perm, pos = torch.randperm(len(x), generator=order).to(device), 0
    for _ in range(steps):
        if pos + batch > len(perm):
            perm, pos = torch.randperm(len(x), generator=order).to(device), 0
        real = x[perm[pos : pos + batch]]
        pos += batch
        with torch.no_grad():
            fake = G(torch.rand(batch, z_dim, device=device) * 2 - 1)
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-D(G(torch.rand(batch, z_dim, device=device) * 2 - 1))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    return time.perf_counter() - t0


def harness_trial(cfg, variant: str, device: torch.device) -> tuple[float, float]:
    """(seconds of run_trial without its evaluations, seconds spent evaluating) for one trial."""
    eval_s = [0.0]
    evaluate = train.evaluate

    def timed_evaluate(*args: Any, **kwargs: Any):
        t = time.perf_counter()
        out = evaluate(*args, **kwargs)
        eval_s[0] += time.perf_counter() - t
        return out

    v = VARIANTS[variant]
    train.evaluate = timed_evaluate
    try:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            result = train.run_trial(cfg, v, dict(v.defaults), train.trial_seeds(0, 0), Path(d), device)
            wall = time.perf_counter() - t0
    finally:
        train.evaluate = evaluate
    if result.outcome != "complete" or result.steps != cfg.train.steps:
        raise RuntimeError(f"harness trial ended {result.outcome} after {result.steps} steps: {result.reason}")
    return wall - eval_s[0], eval_s[0]


@benchmark("harness_overhead")
def harness_overhead(quick: bool) -> dict[str, Any]:
    """(a) run_trial (evaluation excluded) / bare PyTorch loop, same model, data and steps."""
    steps, repeats, width = (10, 1, 0.125) if quick else (60, 5, 0.25)
    device = torch.device("cpu")
    base = load_study("quick")
    cfg = base.replace("model", width=width).replace("train", steps=steps, checkpoint_every=steps, device="cpu")
    variant = VARIANTS["ns_gan"]
    hp = variant.defaults
    images = data_mod.load(cfg.data.dataset, train.data_root(cfg)).train
    eval_times: list[float] = []

    def harness() -> float:
        loop_s, ev = harness_trial(cfg, "ns_gan", device)
        eval_times.append(ev)
        return loop_s

    def bare() -> float:
        return bare_loop(images, cfg.model.architecture, width, cfg.model.z_dim, cfg.train.batch_size, steps,
                         hp["learning_rate"], hp["beta1"], device)

    times = side_by_side({"harness": harness, "bare": bare}, repeats, warmup=0 if quick else 1)
    return {
        "ratio": ratio(times, "harness", "bare"),
        "harness_ms_per_step": round(1000 * median(times["harness"]) / steps, 2),
        "bare_ms_per_step": round(1000 * median(times["bare"]) / steps, 2),
        "goal": "<= 1.05",
        "detail": {"steps": steps, "repeats": repeats, "width": width, "batch": cfg.train.batch_size,
                   "variant": "ns_gan (paper default)", "log_every": cfg.train.log_every,
                   "eval_s_excluded": round(median(eval_times), 3), "seconds": times},
        "command": "python -m bench.benchmarks harness_overhead",
    }
