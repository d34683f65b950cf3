"""The data types every stage shares: `Data` (named train/test splits, labels, a content
fingerprint) and the lazy split protocol for sets too large to hold as one tensor."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch


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
