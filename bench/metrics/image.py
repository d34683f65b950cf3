"""Metrics in an extractor's feature space: FID, KID, Inception Score and improved precision/recall.

The arithmetic is torch-fidelity's own (fidelity.py) on features the harness extracts itself; the
generated images are rounded to 8-bit levels first, as real images are stored, so both sides go
through the same quantisation. One feature pass per checkpoint serves every metric of one extractor.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from bench.metrics import fidelity
from bench.metrics.base import MetricContext, reference, reference_statistics


def _generated(images: torch.Tensor, count: int, name: str) -> torch.Tensor:
    if len(images) < count:
        raise ValueError(f"metric {name} needs {count} generated images, got {len(images)}")
    return images[:count]


def fid(kind: str, count: int, split: str = "test") -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, images: torch.Tensor) -> dict[str, float]:
        images = _generated(images, count, "fid")
        if not torch.isfinite(images).all():
            return {"value": math.nan}
        ext = ctx.extractor(kind)
        ref = reference_statistics(ctx, ext, split, count)
        gen = fidelity.statistics(ctx.features(ext, images)[ext.layers[0]])
        return {"value": fidelity.frechet_distance(gen, ref)}

    return compute


def kid(kind: str, count: int, subsets: int, subset_size: int, split: str = "test") -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, images: torch.Tensor) -> dict[str, float]:
        images = _generated(images, count, "kid")
        if not torch.isfinite(images).all():
            return {"value": math.nan, "std": math.nan}
        ext = ctx.extractor(kind)
        real = reference(ctx, ext, split, count)["features"][ext.layers[0]]
        out = fidelity.kid(ctx.features(ext, images)[ext.layers[0]], real, subsets, subset_size, ctx.seed)
        return {"value": out["mean"], "std": out["std"]}

    return compute


def inception_score(count: int) -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, images: torch.Tensor) -> dict[str, float]:
        images = _generated(images, count, "is")
        if not torch.isfinite(images).all():
            return {"value": math.nan}
        ext = ctx.extractor("inception")
        return {"value": fidelity.inception_score(ctx.features(ext, images)["logits_unbiased"])}

    return compute


def prc(kind: str, count: int, neighborhood: int = 3, split: str = "test") -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, images: torch.Tensor) -> dict[str, float]:
        images = _generated(images, count, "prc")
        if not torch.isfinite(images).all():
            return {"value": math.nan, "precision": math.nan, "recall": math.nan}
        ext = ctx.extractor(kind)
        real = reference(ctx, ext, split, count)["features"][ext.layers[0]]
        out = fidelity.precision_recall(ctx.features(ext, images)[ext.layers[0]], real, neighborhood)
        return {"value": out["f_score"], "precision": out["precision"], "recall": out["recall"]}

    return compute
