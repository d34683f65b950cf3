"""Feature extractors: the Inception network of the paper's FID and a domain classifier for offline FID.

An `Extractor` maps a batch of 8-bit images (B, C, H, W) on the device to named feature layers,
and carries what identifies it (name, weights sha256, input preprocessing) into every value it
produces and into the content key of cached reference statistics (base.py).

`inception`: torch-fidelity's `inception-v3-compat` (fidelity.py), pool3 (2048-d) and pre-bias
logits; grey images are tiled to 3 channels; weights from the study's `[eval] inception_weights`,
$BENCH_INCEPTION_WEIGHTS or torch-fidelity's download.

`lenet-digits5k`: a small digit classifier (lenet.py) whose weights ship with the package.

Inception weights cannot be downloaded on an offline machine, so CPU and offline studies measure
FID in the feature space of a LeNet-style classifier trained on the dataset's own train split
(the "domain FID" used for MNIST by e.g. Lucic et al.'s precision/recall follow-ups). Its weights
are one fixed file, verified against a recorded sha256 when loaded, so every machine and worker
scores in the same feature space; the sha256 is recorded beside every value. Metric names say
which extractor they use (`fid_lenet_...`), so a domain FID is never mistaken for the Inception one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from bench.metrics import dinov2, fidelity, lenet


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
        return {"extractor": self.name, "sha256": self.sha256, "preprocess": self.preprocess,
                **{k: v for k, v in self.meta.items() if k != "path"}}


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

LENET_CPU_CHUNK = 100  # images per LeNet pass on a CPU


def lenet_extractor(device: torch.device) -> Extractor:
    """The features of the shipped digits5k LeNet (lenet.py): one fixed network, verified on load.

    On a CPU it runs `LENET_CPU_CHUNK` images at a time whatever the evaluation batch: a pass over 500
    allocates ~50 MB activations, above glibc's mmap threshold, so every pass faults its pages in
    afresh; 500 images took 170 ms (104 of them in the kernel) against 71 ms in chunks of 100 on one
    core of this machine, with the same features bit for bit."""
    model = lenet.load(device)

    def run(x: torch.Tensor) -> dict[str, torch.Tensor]:  # (B, C, H, W) uint8
        if x.device.type != "cpu" or len(x) <= LENET_CPU_CHUNK:
            return {"features": model.features(x.float() / 255.0)}
        return {"features": torch.cat([model.features(c.float() / 255.0) for c in x.split(LENET_CPU_CHUNK)])}

    return Extractor(
        name=f"lenet-{lenet.DATASET}", sha256=lenet.WEIGHTS_SHA256, preprocess="uint8 round(x*255), /255", layers=("features",),
        run=run, meta={"recipe": lenet.RECIPE, "test_accuracy": lenet.TEST_ACCURACY, "weights": lenet.WEIGHTS_FILE.name},
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
    locate: Callable[..., Any] | None = None  # locate(weights, key=...): finds (or fetches) its weights before any work
    produces: str = ""  # the Extractor.name its network records (saved statistics name it), known before building


def _inception(device: torch.device, weights: str = "") -> Extractor:
    return inception_extractor(fidelity.resolve_inception_weights(weights), device)


def _lenet(device: torch.device, weights: str = "") -> Extractor:
    return lenet_extractor(device)


EXTRACTORS: dict[str, ExtractorSpec] = {}


def register(spec: ExtractorSpec) -> ExtractorSpec:
    if spec.name in EXTRACTORS:
        raise ValueError(f"extractor {spec.name!r} registered twice")
    EXTRACTORS[spec.name] = spec
    return spec


register(ExtractorSpec(
    "inception", "torch-fidelity's inception-v3-compat (the TF 2015-12-05 graph): pool3 2048-d and pre-bias logits; "
    "weights from [eval] inception_weights, $BENCH_INCEPTION_WEIGHTS or a download", _inception,
    locate=lambda weights, key=fidelity.STUDY_KEY: fidelity.resolve_inception_weights(weights, key=key), produces=fidelity.INCEPTION_NAME))
def dinov2_extractor(path: Path, device: torch.device, size: int = dinov2.INPUT_SIZE) -> Extractor:
    """DINOv2 ViT-B/14 on weights `path` (dinov2.py; timm is imported only here)."""
    run, ident = dinov2.runner(path, device, size)
    return Extractor(name=ident["name"], sha256=ident["sha256"], preprocess=ident["preprocess"], layers=("cls",), run=run,
                     meta={"code": ident["code"], "weights": ident["weights"]})


def _dinov2(device: torch.device, weights: str = "") -> Extractor:
    return dinov2_extractor(dinov2.resolve_weights(), device)  # `weights` is the Inception file: not ours


def _locate_dinov2(weights: str, key: str = "") -> Any:
    return dinov2.resolve_weights()


register(ExtractorSpec(
    "dinov2-vitb14", "DINOv2 ViT-B/14 (timm build) normed CLS token, 768-d, at 224 px as torch-fidelity's dinov2-vit-b-14; "
    "weights from $BENCH_DINOV2_WEIGHTS, the torch hub cache or a download (dinov2.py)", _dinov2, locate=_locate_dinov2,
    produces=dinov2.NAME))
register(ExtractorSpec(
    "lenet-digits5k", f"LeNet digit classifier trained on the digits5k train split, shipped with the package "
    f"(weights sha256 {lenet.WEIGHTS_SHA256[:12]}..., test accuracy {lenet.TEST_ACCURACY}): 128-d features; offline",
    _lenet, input_shape=(1, 28, 28), produces=f"lenet-{lenet.DATASET}"))
