"""FID-path benchmark: the harness's per-checkpoint FID against calling torch-fidelity directly.

Both sides get the same generated images (float tensors in [0, 1], as a generator returns them)
and the same feature network, and both have the reference side warm (the harness: its
content-keyed statistics; torch-fidelity: its own cache, `input2_cache_name`), so the figure is
the cost of one checkpoint evaluation:
- `ours`: image.fid(...) — round to uint8 on the device, one batched pass of the extractor,
  float64 statistics, torch-fidelity's `fid_statistics_to_metric`;
- `torch_fidelity`: the images rounded to uint8 (and tiled to RGB for Inception) into a
  Dataset, then `torch_fidelity.calculate_metrics(input1=..., input2=..., fid=True, ...)` with its
  defaults otherwise (DataLoader with worker processes, `cuda` when present).
Two extractors: `inception` (torch-fidelity's inception-v3-compat with random weights of the real
structure, since this machine is offline; speed does not depend on the values) on a few dozen
images, and `lenet` (the digits5k domain extractor, registered with torch-fidelity) on 1,000.
Figures: images/s of each side (medians of interleaved repeats) and their ratio (ours / theirs).
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import torch

from bench import data as data_mod
from bench.benchmarks import benchmark
from bench.benchmarks.timing import median, ratio, side_by_side, timed
from bench.metrics import base, extractors, fidelity, image
from bench.metrics.extractors import EXTRACTORS


class _U8(torch.utils.data.Dataset):
    def __init__(self, x: torch.Tensor, rgb: bool):
        x = extractors.to_uint8(x)
        self.x = x.expand(-1, 3, -1, -1).contiguous() if rgb and x.shape[1] == 1 else x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def _compare(ctx: base.MetricContext, kind: str, gen: torch.Tensor, count: int, tf_kwargs: dict[str, Any],
             repeats: int) -> dict[str, Any]:
    compute = image.fid(kind, count)
    cache = tempfile.mkdtemp(prefix="tf-cache-")
    ref_name = f"bench-ref-{uuid.uuid4().hex[:8]}"
    rgb = EXTRACTORS[kind].input_shape is None  # grey tiled to RGB, as the extractor does
    real = ctx.data.test[:count]
    common = dict(input2=_U8(real, rgb), input2_cache_name=ref_name, fid=True, cuda=torch.cuda.is_available(), verbose=False,
                  cache_root=cache, batch_size=ctx.batch_size, **tf_kwargs)

    def ours() -> float:
        ctx.begin()
        return timed(lambda: compute(ctx, gen))

    def theirs() -> float:
        return timed(lambda: fidelity.calculate_metrics(input1=_U8(gen, rgb), **common))

    values = {"ours": compute(ctx, gen)["value"], "theirs": fidelity.calculate_metrics(input1=_U8(gen, rgb), **common)[fidelity.KEY_METRIC_FID]}
    times = side_by_side({"ours": ours, "torch_fidelity": theirs}, repeats, warmup=0)
    return {
        "ratio": ratio({k: [1 / t for t in v] for k, v in times.items()}, "ours", "torch_fidelity"),
        "ours_images_per_s": round(count / median(times["ours"]), 2),
        "torch_fidelity_images_per_s": round(count / median(times["torch_fidelity"]), 2),
        "fid_rel_diff": float(f"{abs(values['ours'] - values['theirs']) / max(abs(values['theirs']), 1e-12):.2g}"),
    }


@benchmark("fid_path")
def fid_path(quick: bool) -> dict[str, Any]:
    """images/s of one checkpoint's FID: the harness's path / torch-fidelity's calculate_metrics, same extractor."""
    n_inc, n_lenet, repeats = (8, 1000, 1) if quick else (16, 1000, 2)  # Inception on a CPU: ~0.3 s an image
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    digits = data_mod.load("digits5k", data_mod.resolve_root(""))
    gen = digits.train[::4][:n_lenet].to(device)  # stand-in generated images: real digits of every class
    with tempfile.TemporaryDirectory() as tmp:
        weights = fidelity.write_random_inception_weights(Path(tmp) / fidelity.INCEPTION_FILE)
        ctx = base.MetricContext(digits, device, batch_size=16 if device.type == "cpu" else 500,
                                    inception_weights=str(weights))
        inception = _compare(ctx, "inception", gen[:n_inc], n_inc, dict(
            feature_extractor=fidelity.INCEPTION_NAME, feature_extractor_weights_path=str(weights)), repeats)
        lctx = base.MetricContext(digits, device, batch_size=500)
        ext = lctx.extractor("lenet-digits5k")
        name = fidelity.register_with_torch_fidelity("bench-lenet-digits5k", ext.run, ext.layers)
        lenet = _compare(lctx, "lenet-digits5k", gen[:n_lenet], n_lenet, dict(feature_extractor=name), repeats + 2)
    return {
        "ratio": inception["ratio"],
        "inception_images": n_inc,
        **{f"inception_{k}": v for k, v in inception.items()},
        "lenet_images": n_lenet,
        **{f"lenet_{k}": v for k, v in lenet.items()},
        "device": str(device),
        "command": "make bench BENCH=fid_path",
    }
