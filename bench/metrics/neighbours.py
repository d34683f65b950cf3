"""Nearest-neighbour metrics in a feature space: density and coverage, and the memorization share.

Density and coverage (Naeem, Oh, Uh, Choi and Yoo, "Reliable Fidelity and Diversity Metrics for
Generative Models", ICML 2020), with X the N real features, Y the M generated ones and
NND_k(x) the distance from x to its k-th nearest *other* real point (k = 5 in the paper):

    density  = 1/(kM) Σ_j Σ_i 1[ ‖Y_j - X_i‖ < NND_k(X_i) ]
    coverage = 1/N    Σ_i     1[ min_j ‖Y_j - X_i‖ < NND_k(X_i) ]

Density counts how many real k-NN balls hold each generated sample (1 on average when the two
distributions match; above 1 when samples crowd the dense regions); coverage is the share of real
balls that hold at least one sample, which unlike recall does not grow with outlying samples.
Strict `<` as in the authors' code (clovaai/generative-evaluation-prdc, `compute_prdc`).

Memorization share (the test of Alaa et al. 2022's "authenticity", in the issue's words): a
generated sample counts as a copy when its nearest training neighbour t is closer to it than t is
to its own nearest other training image, i.e. the sample sits inside t's nearest-neighbour gap.
A generator that returns training images scores 1. A generator that does not copy but samples the
data distribution well does *not* score 0: a fresh draw and its nearest training image are mutual
nearest neighbours with a probability near one half (more in low dimensions), so the share of the
held-out test images is the baseline to read a generator's share against, and reports show it.

Distances are computed in float64 in row blocks (on the metric context's device), so the answers do
not depend on the block size.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from bench.metrics.base import MetricContext, reference

BLOCK = 1024  # rows of the distance matrix held at once: 1024 x 10,000 float64 = 80 MB


def _cdist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # float64 matrix-product distances: exact-difference mode is ~50x slower for 10k x 10k x 2048,
    # and in float64 the expansion's error (~1e-7 absolute at worst, for copies) is far below any gap
    return torch.cdist(a, b)


def kth_neighbour_distance(x: torch.Tensor, k: int, block: int = BLOCK) -> torch.Tensor:
    """(N,) distance from each row of x (N, D) to its k-th nearest other row."""
    x = x.to(torch.float64)
    if len(x) <= k:
        raise ValueError(f"{len(x)} points have no {k}-th nearest other point")
    out = []
    for i in range(0, len(x), block):
        d = _cdist(x[i : i + block], x)
        rows = torch.arange(len(d), device=d.device)
        d[rows, rows + i] = math.inf  # a point is not its own neighbour
        out.append(d.kthvalue(k, dim=1).values)
    return torch.cat(out)


def density_coverage(real: torch.Tensor, gen: torch.Tensor, k: int = 5, block: int = BLOCK) -> dict[str, float]:
    """Naeem et al. 2020 density and coverage of generated features `gen` (M, D) against real (N, D)."""
    real, gen = real.to(torch.float64), gen.to(torch.float64)
    radii = kth_neighbour_distance(real, k, block)  # (N,)
    inside = torch.zeros(len(gen), dtype=torch.float64, device=gen.device)  # per generated sample: how many real balls hold it
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)  # per real point: does its ball hold a sample
    for i in range(0, len(real), block):
        hit = _cdist(real[i : i + block], gen) < radii[i : i + block, None]  # (b, M)
        inside += hit.sum(0)
        covered[i : i + block] = hit.any(1)
    return {"density": float(inside.sum() / (k * len(gen))), "coverage": float(covered.double().mean())}


def nearest(query: torch.Tensor, bank: torch.Tensor, block: int = BLOCK) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance, index) of each query row's nearest row of `bank`."""
    query, bank = query.to(torch.float64), bank.to(torch.float64)
    dist, idx = [], []
    for i in range(0, len(query), block):
        d, j = _cdist(query[i : i + block], bank).min(1)
        dist.append(d)
        idx.append(j)
    return torch.cat(dist), torch.cat(idx)


def memorization(gen: torch.Tensor, train: torch.Tensor, block: int = BLOCK) -> dict[str, torch.Tensor | float]:
    """For each generated feature row: its nearest training row, the distance to it, and whether that
    distance is below the training row's own nearest-other-training distance (a copy).
    Returns {"share": float, "copied": (M,) bool, "index": (M,) long, "distance": (M,) float64}."""
    dist, idx = nearest(gen, train, block)
    gap = kth_neighbour_distance(train, 1, block)  # (N_train,) each training row's nearest other
    copied = dist < gap[idx]
    return {"share": float(copied.double().mean()), "copied": copied, "index": idx, "distance": dist}


def dc(kind: str, count: int, k: int = 5, split: str = "test") -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    """The registered metric: density and coverage of `count` generated images against the first
    `count` images of `split`, in extractor `kind`'s first layer; value = coverage (higher is better)."""

    def compute(ctx: MetricContext, images: torch.Tensor) -> dict[str, float]:
        if len(images) < count:
            raise ValueError(f"metric dc needs {count} generated images, got {len(images)}")
        images = images[:count]
        if not torch.isfinite(images).all():
            return {"value": math.nan, "density": math.nan, "coverage": math.nan}
        ext = ctx.extractor(kind)
        real = reference(ctx, ext, split, count)["features"][ext.layers[0]]
        gen = ctx.features(ext, images)[ext.layers[0]]
        out = density_coverage(real.to(ctx.device), gen.to(ctx.device), k)
        return {"value": out["coverage"], **out}

    return compute
