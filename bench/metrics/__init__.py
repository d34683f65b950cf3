"""Metrics: one registry; a metric's name carries its protocol (stylegan2-ada's `fid50k_full` habit).

    fid_inception_10k_test      the paper's FID: 10,000 generated images (fixed z) against the 10,000
                                test images, in Inception pool3 features (torch-fidelity's
                                inception-v3-compat), grey tiled to RGB
    kid_inception_10k_test      KID, same features and images; 100 subsets of 1,000
    is_inception_10k            Inception Score over all 10,000 generated images, one split (PROTOCOL.md)
    prc_inception_10k_test      improved precision/recall (k = 3) in pool3 features; value = F-score
    fd_dinov2_vitb14_10k_test   Fréchet distance in DINOv2 ViT-B/14 CLS features (dinov2.py, timm), 10k vs test
    dc_inception_10k_test       density and coverage (Naeem et al. 2020, k = 5) in pool3; value = coverage
    fid_lenet_digits5k_1k_test  offline FID: 1,000 vs the 1,000 digits5k test images in the 128-d
                                features of the shipped LeNet trained on the train split (lenet.py)
    fid_lenet_digits5k_500_test the same on 500 vs the first 500 test images: half the cost, for cheap
                                searches (budget_efficiency); FID's bias grows as N shrinks, so its
                                values are comparable only with themselves
    kid_/prc_/dc_lenet_digits5k_1k_test   KID (100 subsets of 500), precision/recall and density/coverage
                                in those features
    triangles_prf_1k_test       precision, recall and F1 on `triangles` (triangles_pr.py)

Generated images are rounded to 8-bit levels first, as real images are stored, so both sides go
through the same quantisation. Reference features and statistics are cached on disk by content
(dataset fingerprint, split, count, preprocessing, extractor name, weights sha256 and code
version), never by name alone, under a file lock with an atomic rename, so concurrent workers
compute them once and never read half a file.

A metric is `compute(ctx, images) -> {"value": v, other: ...}`. `value` is what a study minimises
when the metric is listed first (only lower-is-better metrics may be, config.py); the other keys
are recorded as `<name>_<key>`. Non-finite images give NaN, which the training loop records as a divergence.

This module is the registry and its catalogue; the computations live beside it: `image` (FID, KID,
IS, precision/recall in an extractor's features), `neighbours` (density/coverage, memorization), `mixtures`, `triangles_pr`, with `base` (the
context and the reference-statistics cache), `extractors` and `fidelity` (torch-fidelity) below them.
"""

from __future__ import annotations

from typing import Any

import torch

from bench.metrics import image, mixtures, neighbours, triangles_pr
from bench.metrics.base import Metric, MetricContext, full_precision

METRICS: dict[str, Metric] = {}


def register(m: Metric) -> Metric:
    if m.name in METRICS:
        raise ValueError(f"metric {m.name!r} registered twice")
    METRICS[m.name] = m
    return m


# ---------------------------------------------------------------- the catalogue
# images, in an extractor's feature space
register(Metric(
    name="fid_inception_10k_test",
    doc="the paper's FID: Inception pool3 (torch-fidelity inception-v3-compat), 10k generated (fixed z) vs 10k test images",
    num_samples=10_000, compute=image.fid("inception", 10_000), extractor="inception",
))
register(Metric(
    name="kid_inception_10k_test",
    doc="KID (cubic polynomial kernel, 100 subsets of 1,000) in Inception pool3: 10k generated vs 10k test; value = mean",
    num_samples=10_000, compute=image.kid("inception", 10_000, 100, 1000), extractor="inception",
))
register(Metric(
    name="is_inception_10k",
    doc="Inception Score from the pre-bias logits of 10k generated images, one split (higher is better)",
    num_samples=10_000, compute=image.inception_score(10_000), extractor="inception", lower_is_better=False,
))
register(Metric(
    name="prc_inception_10k_test",
    doc="improved precision/recall (k=3) in Inception pool3, 10k vs 10k test; value = F-score (higher is better)",
    num_samples=10_000, compute=image.prc("inception", 10_000), extractor="inception", lower_is_better=False,
))
register(Metric(
    name="fd_dinov2_vitb14_10k_test",
    doc="Fréchet distance in DINOv2 ViT-B/14 CLS features (Stein et al. 2023), 10k generated (fixed z) vs 10k test images",
    num_samples=10_000, compute=image.fid("dinov2-vitb14", 10_000), extractor="dinov2-vitb14",
))
register(Metric(
    name="dc_inception_10k_test",
    doc="density and coverage (Naeem et al. 2020, k=5) in Inception pool3, 10k vs 10k test; value = coverage (higher is better)",
    num_samples=10_000, compute=neighbours.dc("inception", 10_000), extractor="inception", lower_is_better=False,
))
register(Metric(
    name="fid_lenet_digits5k_1k_test",
    doc="FID in LeNet-classifier features: 1k generated (fixed z) vs the 1k digits5k test images; offline",
    num_samples=1000, compute=image.fid("lenet-digits5k", 1000), datasets=("digits5k",), extractor="lenet-digits5k",
))
register(Metric(
    name="fid_lenet_digits5k_500_test",
    doc="FID in LeNet-classifier features: 500 generated (fixed z) vs the first 500 digits5k test images; offline, "
        "for cheap searches (biased above the 1k FID, so compare it only with itself)",
    num_samples=500, compute=image.fid("lenet-digits5k", 500), datasets=("digits5k",), extractor="lenet-digits5k",
))
register(Metric(
    name="kid_lenet_digits5k_1k_test",
    doc="KID in LeNet features (100 subsets of 500): 1k generated vs the 1k digits5k test images; offline",
    num_samples=1000, compute=image.kid("lenet-digits5k", 1000, 100, 500), datasets=("digits5k",), extractor="lenet-digits5k",
))
register(Metric(
    name="prc_lenet_digits5k_1k_test",
    doc="improved precision/recall (k=3) in LeNet features, 1k vs 1k digits5k test; value = F-score (higher is better)",
    num_samples=1000, compute=image.prc("lenet-digits5k", 1000), datasets=("digits5k",), extractor="lenet-digits5k", lower_is_better=False,
))
register(Metric(
    name="dc_lenet_digits5k_1k_test",
    doc="density and coverage (Naeem et al. 2020, k=5) in LeNet features, 1k vs 1k digits5k test; value = coverage (higher is better)",
    num_samples=1000, compute=neighbours.dc("lenet-digits5k", 1000), datasets=("digits5k",), extractor="lenet-digits5k", lower_is_better=False,
))
# 2-D mixtures
for _mix in ("ring8", "grid25"):
    register(Metric(
        name=f"swd_{_mix}_10k_test",
        doc=f"sliced Wasserstein-1 ({mixtures.SLICES} directions) between 10k generated points and the 10k {_mix} test points; lower is better",
        num_samples=10_000, compute=mixtures.mixture_swd(_mix, 10_000), datasets=(_mix,)))
    register(Metric(
        name=f"modes_{_mix}_10k",
        doc=f"{_mix} modes covered: modes holding >= 1% of 10k generated points within 3 std (VEEGAN); higher is better",
        num_samples=10_000, compute=mixtures.mixture_modes(_mix, 10_000), datasets=(_mix,), lower_is_better=False,
        counts_modes=True))
    register(Metric(
        name=f"hq_fraction_{_mix}_10k",
        doc=f"share of 10k generated points within 3 std of their nearest {_mix} mode (VEEGAN); higher is better",
        num_samples=10_000, compute=mixtures.mixture_hq_fraction(_mix, 10_000), datasets=(_mix,), lower_is_better=False))

# triangles (Lucic et al. §5): precision, recall and F1, and the distances behind them
full = dict(restarts=3, invert_steps=300, fit_steps=100)
quick = dict(restarts=2, invert_steps=100, fit_steps=100)
for n, kw, what in ((1000, full, "1k test triangles, 3 restarts x 300 Adam steps"),
                    (100, quick, "100 test triangles, 2 restarts x 100 steps: a CPU smoke-test version")):
    tag = "1k" if n == 1000 else str(n)
    register(Metric(
        name=f"triangles_prf_{tag}_test",
        doc=f"triangles F1 (higher is better) of precision ({n} samples within RMS 0.05 of the triangle manifold) and "
            f"recall (G inverted for {what})",
        num_samples=n, compute=triangles_pr.triangles_prf(n, **kw), datasets=("triangles",), lower_is_better=False, needs_generator=True,
    ))
    register(Metric(
        name=f"triangles_dist_{tag}_test",
        doc=f"triangles: mean of the mean sample-to-manifold and test-to-G RMS distances, same protocol as "
            f"triangles_prf_{tag}_test and computed with it once (lower is better; an objective)",
        num_samples=n, compute=triangles_pr.triangles_dist(n, **kw), datasets=("triangles",), needs_generator=True,
    ))


def compute_metrics(ctx: MetricContext, names: list[str], images: torch.Tensor) -> dict[str, float]:
    """{name: value, name_key: other values} for metrics computed on one set of generated images."""
    values: dict[str, float] = {}
    with full_precision():  # TF32 off for every metric, restored after (issue 14, point 6)
        for name in names:
            m = METRICS[name]
            out = m.compute(ctx, images[: m.num_samples])
            values[name] = float(out["value"])
            values.update({f"{name}_{k}": float(v) for k, v in out.items() if k != "value"})
    return values


def provenance(ctx: MetricContext, names: list[str]) -> dict[str, dict[str, Any]]:
    """{metric: extractor provenance} for the metrics of one evaluation that use an extractor."""
    out = {}
    for name in names:
        kind = METRICS[name].extractor
        if kind and f"x:{kind}" in ctx._memo:
            out[name] = ctx._memo[f"x:{kind}"].provenance()
    return out


def extractor_provenance(ctx: MetricContext) -> dict[str, Any]:
    """Every extractor used in this context (for the manifest)."""
    return {k[2:]: v.provenance() for k, v in ctx._memo.items() if k.startswith("x:")}
