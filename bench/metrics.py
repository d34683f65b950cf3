"""Metrics: one registry; a metric's name carries its protocol (extractor, sample count, reference split).

`fid_lenet_digits5k_1k_test`: FID between 1,000 generated images (fixed z) and the 1,000 test
images of digits5k, in the 128-d feature space of the cached LeNet classifier (features.py).
Generated images are rounded to 8-bit levels first, as real images are stored, so both sides
go through the same quantisation. Reference statistics are cached by content (features.py's
extractor checksum, dataset fingerprint, split, count, preprocessing), never by name alone.

A metric is `compute(ctx, images) -> {name: value, ...}`; `ctx` holds the data, the device and
the evaluation batch size. Non-finite images give NaN, which the training loop records as a
divergence.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from filelock import FileLock

from . import features, fidelity, records
from .data import Data


@dataclass
class MetricContext:
    data: Data
    device: torch.device
    batch_size: int = 500
    _memo: dict = field(default_factory=dict)  # per-process memo of extractors and reference stats

    def memo(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]


@dataclass(frozen=True)
class Metric:
    name: str
    doc: str
    num_samples: int  # generated samples it needs
    compute: Callable[[MetricContext, torch.Tensor], dict[str, float]]
    datasets: tuple[str, ...] | None = None  # None: any dataset
    lower_is_better: bool = True

    def supports(self, dataset: str) -> bool:
        return self.datasets is None or dataset in self.datasets


METRICS: dict[str, Metric] = {}


def register(m: Metric) -> Metric:
    if m.name in METRICS:
        raise ValueError(f"metric {m.name!r} registered twice")
    METRICS[m.name] = m
    return m


def quantize_uint8(images: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] images to the 256 levels real images are stored with (NaN stays NaN)."""
    return torch.round(images.clamp(0, 1) * 255.0) / 255.0 if torch.isfinite(images).all() else images


@torch.no_grad()
def extract(model: torch.nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    out = [model.features(images[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def _stats_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()[:24]


def reference_statistics(ctx: MetricContext, extractor_meta: dict, model: torch.nn.Module, split: str, count: int) -> dict[str, np.ndarray]:
    """mu/sigma of `count` images of a split, cached on disk by content and shared across processes."""
    parts = {
        "dataset": ctx.data.name, "fingerprint": ctx.data.fingerprint(), "split": split, "count": count,
        "preprocess": "uint8-levels", "extractor": extractor_meta["name"], "extractor_sha256": extractor_meta["sha256"],
    }
    key = _stats_key(parts)

    def load_or_compute() -> dict[str, np.ndarray]:
        path = records.cache_root() / "stats" / f"{ctx.data.name}-{split}-{count}-{key}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not path.is_file():
                images = ctx.data.split(split)
                if len(images) < count:
                    raise ValueError(f"{ctx.data.name} {split} split has {len(images)} images, the metric needs {count}")
                feats = extract(model, images[:count], ctx.device, ctx.batch_size)
                stats = fidelity.statistics(feats)
                buf = io.BytesIO()
                np.savez(buf, mu=stats["mu"], sigma=stats["sigma"])
                records.atomic_write_bytes(path, buf.getvalue())
            with np.load(path, allow_pickle=False) as z:
                return {"mu": z["mu"], "sigma": z["sigma"]}

    return ctx.memo("stats:" + key, load_or_compute)


def lenet_fid(dataset: str, count: int, split: str = "test") -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, images: torch.Tensor) -> dict[str, float]:
        model, meta = ctx.memo("lenet", lambda: features.lenet(ctx.data, ctx.device))
        ref = reference_statistics(ctx, meta, model, split, count)
        images = images[:count]
        if not torch.isfinite(images).all():
            return {"value": math.nan}
        gen = fidelity.statistics(extract(model, quantize_uint8(images), ctx.device, ctx.batch_size))
        return {"value": fidelity.frechet_distance(gen, ref)}

    return compute


register(Metric(
    name="fid_lenet_digits5k_1k_test",
    doc="FID in LeNet-classifier features: 1k generated (fixed z) vs the 1k digits5k test images; offline",
    num_samples=1000,
    compute=lenet_fid("digits5k", 1000),
    datasets=("digits5k",),
))


def extractor_provenance(ctx: MetricContext) -> dict[str, Any]:
    """What was used to compute the lenet metrics in this context (for the manifest)."""
    if "lenet" in ctx._memo:
        return {k: v for k, v in ctx._memo["lenet"][1].items() if k != "path"}
    return {}


# --- 2-D mixtures (ring8, grid25): mode coverage and sample quality ---------------------------------
# A generated point is *high quality* when it lies within 3 standard deviations of its nearest mode
# (Srivastava et al. 2017, VEEGAN, section 5.1; also PacGAN). A mode is *covered* when at least 1% of
# the generated points are high-quality points nearest to it (100 of 10k): a lone stray point does
# not count, while any mode a generator really produces (1/8 or 1/25 of the mass when it is fair)
# clears the bar easily. The sliced Wasserstein-1 distance to the 10k test points is the
# lower-is-better objective for these data: unlike a Gaussian fit it sees a dropped mode.

MODE_SHARE = 0.01
SLICES = 128


def _mixture_assign(name: str, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(nearest mode index, whether within 3 std of it) for each (N, 2) point."""
    from .data_synthetic import MIXTURES

    m = MIXTURES[name]
    d = torch.cdist(points.detach().double().cpu(), torch.from_numpy(m.means))  # (N, K)
    dist, idx = d.min(dim=1)
    return idx, dist <= 3.0 * m.std


def mixture_modes(name: str, count: int) -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, points: torch.Tensor) -> dict[str, float]:
        from .data_synthetic import MIXTURES

        points = points[:count]
        if not torch.isfinite(points).all():
            return {"value": math.nan}
        idx, hq = _mixture_assign(name, points)
        per_mode = torch.bincount(idx[hq], minlength=len(MIXTURES[name].centres))
        return {"value": float((per_mode >= MODE_SHARE * len(points)).sum())}

    return compute


def mixture_hq_fraction(name: str, count: int) -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, points: torch.Tensor) -> dict[str, float]:
        points = points[:count]
        if not torch.isfinite(points).all():
            return {"value": math.nan}
        return {"value": float(_mixture_assign(name, points)[1].double().mean())}

    return compute


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, slices: int = SLICES) -> float:
    """Mean over `slices` directions evenly spaced on [0, pi) of the 1-D Wasserstein-1 distance between
    the projections of two equally sized (N, 2) samples (sorted projections, mean absolute gap)."""
    if len(a) != len(b):
        raise ValueError(f"sliced Wasserstein needs equal sample counts, got {len(a)} and {len(b)}")
    theta = torch.arange(slices, dtype=torch.float64) * (math.pi / slices)
    u = torch.stack([torch.cos(theta), torch.sin(theta)])  # (2, S)
    pa = torch.sort(a.detach().double().cpu() @ u, dim=0).values
    pb = torch.sort(b.detach().double().cpu() @ u, dim=0).values
    return float((pa - pb).abs().mean())


def mixture_swd(name: str, count: int) -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, points: torch.Tensor) -> dict[str, float]:
        if ctx.data.name != name:
            raise ValueError(f"metric for {name} given dataset {ctx.data.name}")
        points, ref = points[:count], ctx.data.test[:count]
        if len(ref) < count:
            raise ValueError(f"{name} test split has {len(ref)} points, the metric needs {count}")
        if not torch.isfinite(points).all():
            return {"value": math.nan}
        return {"value": sliced_wasserstein(points, ref)}

    return compute


for _mix in ("ring8", "grid25"):
    register(Metric(
        name=f"swd_{_mix}_10k_test",
        doc=f"sliced Wasserstein-1 ({SLICES} directions) between 10k generated points and the 10k {_mix} test points; lower is better",
        num_samples=10_000, compute=mixture_swd(_mix, 10_000), datasets=(_mix,)))
    register(Metric(
        name=f"modes_{_mix}_10k",
        doc=f"{_mix} modes covered: modes holding >= 1% of 10k generated points within 3 std (VEEGAN); higher is better",
        num_samples=10_000, compute=mixture_modes(_mix, 10_000), datasets=(_mix,), lower_is_better=False))
    register(Metric(
        name=f"hq_fraction_{_mix}_10k",
        doc=f"share of 10k generated points within 3 std of their nearest {_mix} mode (VEEGAN); higher is better",
        num_samples=10_000, compute=mixture_hq_fraction(_mix, 10_000), datasets=(_mix,), lower_is_better=False))
