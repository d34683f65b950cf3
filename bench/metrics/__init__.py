"""Metrics: one registry; a metric's name carries its protocol (stylegan2-ada's `fid50k_full` habit).

    fid_inception_10k_test      the paper's FID: 10,000 generated images (fixed z) against the 10,000
                                test images, in Inception pool3 features (torch-fidelity's
                                inception-v3-compat), grey tiled to RGB
    kid_inception_10k_test      KID, same features and images; 100 subsets of 1,000
    is_inception_10k            Inception Score over all 10,000 generated images, one split (PROTOCOL.md)
    prc_inception_10k_test      improved precision/recall (k = 3) in pool3 features; value = F-score
    fid_lenet_digits5k_1k_test  offline FID: 1,000 vs the 1,000 digits5k test images in the 128-d
                                features of a LeNet trained on the train split (extractors.py)
    kid_/prc_lenet_digits5k_1k_test   KID (100 subsets of 500) and precision/recall in those features
    triangles_prf_1k_test       precision, recall and F1 on `triangles` (triangles_pr.py)

Generated images are rounded to 8-bit levels first, as real images are stored, so both sides go
through the same quantisation. Reference features and statistics are cached on disk by content
(dataset fingerprint, split, count, preprocessing, extractor name, weights sha256 and code
version), never by name alone, under a file lock with an atomic rename, so concurrent workers
compute them once and never read half a file.

A metric is `compute(ctx, images) -> {"value": v, other: ...}`. `value` is what a study minimises
when the metric is listed first (only lower-is-better metrics may be, config.py); the other keys
are recorded as `<name>_<key>`. Non-finite images give NaN, which the training loop records as a divergence.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from filelock import FileLock

from bench.metrics import extractors
from bench.metrics import fidelity
from bench import records
from bench.data import Data
from bench.metrics.extractors import Extractor, to_uint8


@dataclass
class MetricContext:
    data: Data
    device: torch.device
    batch_size: int = 500  # feature-extraction batch
    seed: int = 42  # the study's evaluation seed: KID subsets and G inversion restarts draw from it
    inception_weights: str = ""  # the study's [eval] inception_weights ("" = $BENCH_INCEPTION_WEIGHTS or download)
    z_dim: int = 64
    generator: Callable[[torch.Tensor], torch.Tensor] | None = None  # z (N, z_dim) -> images, for metrics that invert G
    _memo: dict = field(default_factory=dict)  # per-process: extractors, reference features
    _features: dict = field(default_factory=dict)  # per evaluation: features of the generated images

    def memo(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    def begin(self, generator: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Start evaluating a new checkpoint: forget the last one's extractors."""
        self._features.clear()
        self.generator = generator

    def extractor(self, kind: str) -> Extractor:
        if kind == "inception":
            return self.memo("x:inception", lambda: extractors.inception_extractor(
                fidelity.resolve_inception_weights(self.inception_weights), self.device))
        if kind == "lenet":
            return self.memo("x:lenet", lambda: extractors.lenet_extractor(self.data, self.device))
        raise KeyError(kind)

    def features(self, ext: Extractor, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Features of generated images, shared by every metric of one evaluation (one network pass
        for FID, KID, IS and PRC); a request for the first n images reuses a longer pass."""
        key = (ext.name, images.data_ptr(), tuple(images.shape[1:]))
        have = self._features.get(key)
        if have is None or len(have[ext.layers[0]]) < len(images):
            have = extract(ext, to_uint8(images), self.device, self.batch_size)
            self._features[key] = have
        return {k: v[: len(images)] for k, v in have.items()}


@dataclass(frozen=True)
class Metric:
    name: str
    doc: str
    num_samples: int  # generated samples it needs
    compute: Callable[[MetricContext, torch.Tensor], dict[str, float]]
    datasets: tuple[str, ...] | None = None  # None: any image dataset
    lower_is_better: bool = True
    extractor: str = ""  # feature extractor kind ("inception", "lenet"), recorded with every value
    needs_generator: bool = False  # reads ctx.generator (inverts G)

    def supports(self, dataset: str) -> bool:
        if self.datasets is None:  # any dataset of images (C, H, W), not the 2-D point sets
            from bench.data import DATASETS

            return dataset in DATASETS and len(DATASETS[dataset].shape) == 3
        return dataset in self.datasets


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
def extract(ext: Extractor, images_u8: torch.Tensor, device: torch.device, batch_size: int) -> dict[str, torch.Tensor]:
    """{layer: (N, D) float64 on the CPU} of uint8 images, `batch_size` at a time on `device`."""
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ext.layers}
    for i in range(0, len(images_u8), batch_size):
        out = ext.run(images_u8[i : i + batch_size].to(device, non_blocking=True))
        for k in ext.layers:
            parts[k].append(out[k].to(torch.float64).cpu())
    return {k: torch.cat(v) for k, v in parts.items()}


# ---------------------------------------------------------------- reference features, cached by content


def stats_key_parts(data: Data, ext: Extractor, split: str, count: int) -> dict[str, Any]:
    return {
        "dataset": data.name, "fingerprint": data.fingerprint(), "split": split, "count": count,
        "preprocess": ext.preprocess, "extractor": ext.name, "extractor_sha256": ext.sha256,
        "layers": list(ext.layers), "code": ext.meta.get("code", ""),
    }


def stats_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(repr(sorted(parts.items())).encode()).hexdigest()[:24]


def reference_path(data: Data, ext: Extractor, split: str, count: int) -> Path:
    key = stats_key(stats_key_parts(data, ext, split, count))
    return records.cache_root() / "stats" / f"{data.name}-{split}-{count}-{ext.name}-{key}.npz"


def reference(ctx: MetricContext, ext: Extractor, split: str, count: int) -> dict[str, Any]:
    """Features of the first `count` images of a split and the FID statistics of ext.layers[0]:
    computed once under a file lock, written by atomic rename, shared by every process."""
    path = reference_path(ctx.data, ext, split, count)

    def load_or_compute() -> dict[str, Any]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if not path.is_file():
                images = ctx.data.split(split)
                if len(images) < count:
                    raise ValueError(f"{ctx.data.name} {split} split has {len(images)} images, the metric needs {count}")
                feats = extract(ext, to_uint8(images[:count]), ctx.device, ctx.batch_size)
                stats = fidelity.statistics(feats[ext.layers[0]])
                buf = io.BytesIO()
                np.savez(buf, mu=stats["mu"], sigma=stats["sigma"], **{f"features_{k}": v.numpy() for k, v in feats.items()})
                records.atomic_write_bytes(path, buf.getvalue())
        z = records.load_arrays(path)  # a damaged cache file: one line naming it, "delete it" (issue #10)
        return {"stats": {"mu": z["mu"], "sigma": z["sigma"]},
                "features": {k: torch.from_numpy(z[f"features_{k}"]) for k in ext.layers}}

    return ctx.memo(f"ref:{path.name}", load_or_compute)


def reference_statistics(ctx: MetricContext, ext: Extractor, split: str, count: int) -> dict[str, np.ndarray]:
    return reference(ctx, ext, split, count)["stats"]


# ---------------------------------------------------------------- metric factories


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


# ---------------------------------------------------------------- the registry

register(Metric(
    name="fid_inception_10k_test",
    doc="the paper's FID: Inception pool3 (torch-fidelity inception-v3-compat), 10k generated (fixed z) vs 10k test images",
    num_samples=10_000, compute=fid("inception", 10_000), extractor="inception",
))
register(Metric(
    name="kid_inception_10k_test",
    doc="KID (cubic polynomial kernel, 100 subsets of 1,000) in Inception pool3: 10k generated vs 10k test; value = mean",
    num_samples=10_000, compute=kid("inception", 10_000, 100, 1000), extractor="inception",
))
register(Metric(
    name="is_inception_10k",
    doc="Inception Score from the pre-bias logits of 10k generated images, one split (higher is better)",
    num_samples=10_000, compute=inception_score(10_000), extractor="inception", lower_is_better=False,
))
register(Metric(
    name="prc_inception_10k_test",
    doc="improved precision/recall (k=3) in Inception pool3, 10k vs 10k test; value = F-score (higher is better)",
    num_samples=10_000, compute=prc("inception", 10_000), extractor="inception", lower_is_better=False,
))
register(Metric(
    name="fid_lenet_digits5k_1k_test",
    doc="FID in LeNet-classifier features: 1k generated (fixed z) vs the 1k digits5k test images; offline",
    num_samples=1000, compute=fid("lenet", 1000), datasets=("digits5k",), extractor="lenet",
))
register(Metric(
    name="kid_lenet_digits5k_1k_test",
    doc="KID in LeNet features (100 subsets of 500): 1k generated vs the 1k digits5k test images; offline",
    num_samples=1000, compute=kid("lenet", 1000, 100, 500), datasets=("digits5k",), extractor="lenet",
))
register(Metric(
    name="prc_lenet_digits5k_1k_test",
    doc="improved precision/recall (k=3) in LeNet features, 1k vs 1k digits5k test; value = F-score (higher is better)",
    num_samples=1000, compute=prc("lenet", 1000), datasets=("digits5k",), extractor="lenet", lower_is_better=False,
))


def compute_metrics(ctx: MetricContext, names: list[str], images: torch.Tensor) -> dict[str, float]:
    """{name: value, name_key: other values} for metrics computed on one set of generated images."""
    values: dict[str, float] = {}
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
    from bench.data.synthetic import MIXTURES

    m = MIXTURES[name]
    d = torch.cdist(points.detach().double().cpu(), torch.from_numpy(m.means))  # (N, K)
    dist, idx = d.min(dim=1)
    return idx, dist <= 3.0 * m.std


def mixture_modes(name: str, count: int) -> Callable[[MetricContext, torch.Tensor], dict[str, float]]:
    def compute(ctx: MetricContext, points: torch.Tensor) -> dict[str, float]:
        from bench.data.synthetic import MIXTURES

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


from bench.metrics import triangles_pr  # noqa: E402,F401  (registers the triangles metrics)
