"""Batch streams: the seeded order in which a trial sees its training split.

A split that fits in memory is one tensor; `BatchStream` moves it to the device once and draws
seeded random permutations there (no DataLoader worker, collation or host-to-device copy). A lazy
split (celeba) is streamed by `LoaderStream`, a DataLoader with workers and a seeded sampler.
Either way the order is a function of the trial's `data_order` seed alone, and `describe()` gives
what the training log records about it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from bench.data.base import LazySplit, Split
from bench.errors import HarnessError


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

    def state(self) -> dict[str, Any]:
        """The position in the seeded order, for a trial's resume state (trial/resume.py)."""
        return {"gen": self.gen.get_state(), "perm": self._perm.cpu(), "pos": self._pos}

    def restore(self, s: dict[str, Any]) -> None:
        self.gen.set_state(s["gen"].cpu())
        self._perm, self._pos = s["perm"].to(self.images.device), int(s["pos"])

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
        self._taken = 0  # batches taken from the current epoch

    def next(self) -> torch.Tensor:  # (B, C, H, W)
        try:
            batch = next(self._it)
        except StopIteration:
            self._it, self._taken = iter(self.loader), 0
            batch = next(self._it)
        self._taken += 1
        return batch.to(self.device, non_blocking=True)

    def state(self) -> dict[str, Any]:
        """The position in the seeded order: the generator as it stood before the current epoch's
        permutation and the batches taken from that epoch (trial/resume.py)."""
        return {"epoch_gen": self.loader.sampler.epoch_state, "taken": self._taken}

    def restore(self, s: dict[str, Any]) -> None:
        sampler = self.loader.sampler
        sampler.gen.set_state(s["epoch_gen"].cpu())
        sampler.skip = int(s["taken"]) * self.batch_size  # the epoch's permutation is drawn again, its first batches skipped
        self._it, self._taken = iter(self.loader), int(s["taken"])

    def describe(self) -> dict[str, Any]:
        return {"path": f"streamed (DataLoader, {self.workers} workers)", "order_seed": self.seed, "order": _ORDER,
                "first_epoch_sha256": first_epoch_digest(len(self.images), self.seed)}


class _SeededEpochs(torch.utils.data.Sampler):
    def __init__(self, n: int, seed: int):
        self.n, self.gen = n, torch.Generator(device="cpu").manual_seed(seed)
        self.epoch_state = self.gen.get_state()  # before the current epoch's permutation
        self.skip = 0  # indices to skip once, at the start of the next epoch (a restored position)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        self.epoch_state = self.gen.get_state()
        perm = torch.randperm(self.n, generator=self.gen).tolist()
        skip, self.skip = self.skip, 0
        return iter(perm[skip:])


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
