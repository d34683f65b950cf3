"""Feature extractors: the Inception network of the paper's FID and a domain classifier for offline FID.

An `Extractor` maps a batch of 8-bit images (B, C, H, W) on the device to named feature layers,
and carries what identifies it (name, weights sha256, input preprocessing) into every value it
produces and into the content key of cached reference statistics (metrics.py).

`inception`: torch-fidelity's `inception-v3-compat` (fidelity.py), pool3 (2048-d) and pre-bias
logits; grey images are tiled to 3 channels; weights from the study's `[eval] inception_weights`,
$BENCH_INCEPTION_WEIGHTS or torch-fidelity's download.

`lenet`: a small digit classifier trained once and cached.

Inception weights cannot be downloaded on an offline machine, so CPU and offline studies measure
FID in the feature space of a LeNet-style classifier trained on the dataset's own train split
(the "domain FID" used for MNIST by e.g. Lucic et al.'s precision/recall follow-ups). The
recipe is fixed and seeded; the trained weights are cached under $BENCH_CACHE/extractors keyed
by the recipe and the dataset's fingerprint, with a sha256 of the weights recorded beside every
value. Metric names say which extractor they use (`fid_lenet_...`), so a domain FID is never
mistaken for the Inception one.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from filelock import FileLock
from torch import nn

from bench import records
from bench.data.base import Data
from bench.metrics import fidelity


@dataclass(frozen=True)
class Extractor:
    name: str  # "inception-v3-compat", "lenet-digits5k", ...
    sha256: str  # checksum of its weights
    preprocess: str  # how images become its input; part of the reference-statistics key
    layers: tuple[str, ...]  # the feature layers `run` returns; layers[0] is the FID layer
    run: Callable[[torch.Tensor], dict[str, torch.Tensor]] = field(repr=False, compare=False)  # (B,C,H,W) uint8 -> {layer: (B, D)}
    meta: dict[str, Any] = field(default_factory=dict, compare=False)  # provenance (recipe, accuracy, code version)

    def provenance(self) -> dict[str, Any]:
        """What is recorded beside every value computed with this extractor."""
        return {"extractor": self.name, "sha256": self.sha256, **{k: v for k, v in self.meta.items() if k != "path"}}


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats -> the 256 levels images are stored with: round(x * 255), as real data was quantised."""
    return torch.round(images.clamp(0, 1) * 255.0).to(torch.uint8)


def inception_extractor(weights: Path, device: torch.device) -> Extractor:
    net = fidelity.inception(weights, device)

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, 1|3, H, W) uint8
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # grey tiled to 3 channels, as the paper's TF code did
        return dict(zip(fidelity.INCEPTION_LAYERS, net(x)))

    return Extractor(
        name=fidelity.INCEPTION_NAME, sha256=fidelity.file_sha256(weights),
        preprocess="uint8 round(x*255); grey tiled to RGB; TF1 bilinear resize to 299 (torch-fidelity)",
        layers=fidelity.INCEPTION_LAYERS, run=run,
        meta={"code": f"torch-fidelity {fidelity.VERSION}", "weights": weights.name, "path": str(weights)},
    )

LENET_RECIPE = "lenet-v1: conv32-pool-conv64-pool-fc128(relu, features)-fc10; adam 1e-3; 8 epochs; batch 128; seed 0"


class LeNet(nn.Module):
    FEATURES = 128

    def __init__(self, shape: tuple[int, int, int] = (1, 28, 28), classes: int = 10):
        super().__init__()
        in_channels, h, w = shape
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), self.FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(self.FEATURES, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) in [0, 1] -> (B, 128)
        return self.trunk(x * 2.0 - 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _train_lenet(data: Data) -> tuple[dict, float]:
    if data.train_labels is None or data.test_labels is None:
        raise ValueError(f"dataset {data.name} has no labels; the lenet extractor needs them")
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = LeNet(data.shape)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = data.train, data.train_labels
    for _ in range(8):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), 128):
            idx = perm[i : i + 128]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = (model(data.test).argmax(1) == data.test_labels).float().mean().item()
    return model.state_dict(), acc


def weights_sha256(state: dict) -> str:
    buf = io.BytesIO()
    torch.save({k: v.cpu() for k, v in sorted(state.items())}, buf)
    return hashlib.sha256(buf.getvalue()).hexdigest()


def lenet(data: Data, device: torch.device) -> tuple[LeNet, dict]:
    """The cached LeNet extractor for `data` and its provenance (recipe, sha256, test accuracy)."""
    key = hashlib.sha256(f"{LENET_RECIPE}|{data.name}|{data.fingerprint()}".encode()).hexdigest()[:16]
    path = records.cache_root() / "extractors" / f"lenet-{data.name}-{key}.pt"
    meta_path = path.with_suffix(".json")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not (path.is_file() and meta_path.is_file()):
            state, acc = _train_lenet(data)
            meta = {"recipe": LENET_RECIPE, "dataset": data.name, "test_accuracy": acc, "sha256": weights_sha256(state)}
            buf = io.BytesIO()
            torch.save(state, buf)
            records.atomic_write_bytes(path, buf.getvalue())
            records.write_json(meta_path, meta)
    state = records.load_weights(path)  # weights_only; a damaged cache file fails naming it (issue #10)
    meta = records.read_json(Path(meta_path))
    model = LeNet(data.shape)
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return model.to(device), {**meta, "name": "lenet", "path": str(path)}


def lenet_extractor(data: Data, device: torch.device) -> Extractor:
    """The LeNet features of `data`'s classifier (trained once, cached; see `lenet`)."""
    model, meta = lenet(data, device)

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, C, H, W) uint8
        return {"features": model.features(x.float() / 255.0)}

    return Extractor(
        name=f"lenet-{data.name}", sha256=meta["sha256"], preprocess="uint8 round(x*255), /255", layers=("features",),
        run=run, meta={"recipe": meta["recipe"], "test_accuracy": round(meta["test_accuracy"], 4)},
    )


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class ExtractorSpec:
    """A registered feature space. `build(device, weights)` returns the network ready to run;
    `weights` is a local weights file where the extractor takes one ("" = its default search)."""

    name: str  # the registry key: `Metric.extractor` and `bench fid --features` name it
    doc: str
    build: Callable[[torch.device, str], Extractor] = field(repr=False)
    input_shape: tuple[int, int, int] | None = None  # the (C, H, W) it takes; None: any image size, grey tiled to RGB
    locate: Callable[[str], Any] | None = None  # finds (or fetches) its weights before a study's first trial


def _inception(device: torch.device, weights: str = "") -> Extractor:
    return inception_extractor(fidelity.resolve_inception_weights(weights), device)


def _lenet_of(dataset: str) -> Callable[[torch.device, str], Extractor]:
    def build(device: torch.device, weights: str = "") -> Extractor:
        from bench import data

        return lenet_extractor(data.load(dataset, data.resolve_root("")), device)

    return build


EXTRACTORS: dict[str, ExtractorSpec] = {}


def register(spec: ExtractorSpec) -> ExtractorSpec:
    if spec.name in EXTRACTORS:
        raise ValueError(f"extractor {spec.name!r} registered twice")
    EXTRACTORS[spec.name] = spec
    return spec


register(ExtractorSpec(
    "inception", "torch-fidelity's inception-v3-compat (the TF 2015-12-05 graph): pool3 2048-d and pre-bias logits; "
    "weights from [eval] inception_weights, $BENCH_INCEPTION_WEIGHTS or a download", _inception,
    locate=lambda weights: fidelity.resolve_inception_weights(weights)))
register(ExtractorSpec(
    "lenet-digits5k", "LeNet digit classifier trained on the digits5k train split: 128-d features; offline",
    _lenet_of("digits5k"), input_shape=(1, 28, 28)))
