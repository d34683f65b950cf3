"""What every metric shares: `Metric` (a registry entry), `MetricContext` (the dataset, device and
per-process memo of one trial's evaluations), feature extraction in batches, and the reference
statistics cache.

Reference features and statistics are cached on disk by content (dataset fingerprint, split,
count, preprocessing, extractor name, weights sha256 and code version), never by name alone,
under a file lock with an atomic rename, so concurrent workers compute them once and never read
half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from filelock import FileLock

from bench import records
from bench.data.base import Data
from bench.metrics import extractors, fidelity
from bench.metrics.extractors import Extractor, to_uint8


NEW_TF32_API = hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cuda.matmul, "fp32_precision")  # torch >= 2.9


def tf32_state() -> dict[str, str]:
    """How float32 convolutions (cuDNN) and matmuls (cuBLAS) may run on Ampere+ GPUs: "tf32" (10-bit
    mantissa), "ieee" (full fp32) or "none" (inherit torch's default; cuDNN's is TF32). torch >= 2.9
    names them `fp32_precision`; older torch has the `allow_tf32` switches. Reading the old switches
    after the new API was used is an error in torch, so the harness uses one API only."""
    if NEW_TF32_API:
        return {"cudnn_conv": torch.backends.cudnn.conv.fp32_precision, "cuda_matmul": torch.backends.cuda.matmul.fp32_precision}
    return {"cudnn_conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee",
            "cuda_matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"}


def _set_tf32(state: dict[str, str]) -> None:
    if NEW_TF32_API:
        torch.backends.cudnn.conv.fp32_precision = state["cudnn_conv"]
        torch.backends.cuda.matmul.fp32_precision = state["cuda_matmul"]
    else:
        torch.backends.cudnn.allow_tf32 = state["cudnn_conv"] == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = state["cuda_matmul"] == "tf32"


@contextlib.contextmanager
def tf32(on: bool):
    """Run the block with TF32 on or off for both cuDNN convolutions and matmuls; restore the
    caller's settings after. TF32 keeps 10 mantissa bits, so a metric computed with it differs from
    the fp32 one (PyTorch docs, "TensorFloat-32 (TF32) on Ampere (and later) devices"); cuDNN's TF32
    is on by default."""
    before = tf32_state()
    _set_tf32({"cudnn_conv": "tf32" if on else "ieee", "cuda_matmul": "tf32" if on else "ieee"})
    try:
        yield
    finally:
        _set_tf32(before)


def full_precision():
    """Every evaluation runs in full fp32: TF32 off for cuDNN and matmul (issue 14, point 6)."""
    return tf32(False)


EVAL_NUMERICS = {"cudnn_conv": "ieee", "cuda_matmul": "ieee"}  # what full_precision sets


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

    def extractor(self, name: str) -> Extractor:
        """The registered extractor `name` (extractors.EXTRACTORS), built once per process."""
        spec = extractors.EXTRACTORS[name]
        return self.memo(f"x:{name}", lambda: spec.build(self.device, self.inception_weights))

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
    extractor: str = ""  # the registered feature extractor (extractors.EXTRACTORS), recorded with every value
    needs_generator: bool = False  # reads ctx.generator (inverts G)
    counts_modes: bool = False  # the value is the number of mixture modes covered (the report's dynamics figure plots it)

    def supports(self, dataset: str) -> bool:
        if self.datasets is None:  # any dataset of images (C, H, W), not the 2-D point sets
            from bench.data import DATASETS

            return dataset in DATASETS and len(DATASETS[dataset].shape) == 3
        return dataset in self.datasets


METRICS: dict[str, Metric] = {}


@torch.no_grad()
def extract(ext: Extractor, images_u8: torch.Tensor, device: torch.device, batch_size: int) -> dict[str, torch.Tensor]:
    """{layer: (N, D) float64 on the CPU} of uint8 images, `batch_size` at a time on `device`."""
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in ext.layers}
    with full_precision():  # features in fp32 even where a caller left TF32 on
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
