"""The datasets read through torchvision: mnist, fashion_mnist, cifar10 and celeba (PROTOCOL.md, "Datasets").

Files live under the data root in torchvision's own layout (root/MNIST/raw, root/FashionMNIST/raw,
root/cifar-10-batches-py, root/celeba). When they are missing, torchvision downloads them if the
network allows (with a socket timeout, so a silent network fails in seconds, not minutes); with
$BENCH_OFFLINE set no download is tried. Either way a failure is one `HarnessError` naming the
dataset, the folder it expected and how to fetch it (`bench fetch NAME --root DIR` on a machine
with network, then copy the folder). Train and test are torchvision's own splits.

MNIST, Fashion-MNIST and CIFAR-10 become one float tensor per split in [0, 1]. CelebA (aligned
178x218 JPEGs) is decoded on access, as compare_gan prepared it (`unpack_celeba_image`):
`tf.image.resize_image_with_crop_or_pad(image, 160, 160)`, a centre crop at offsets
((218-160)//2, (178-160)//2), then `tf.image.resize_images(image, [64, 64])`, TensorFlow 1's
bilinear resize (no half-pixel centres, no antialiasing: source coordinate = 2.5 * target), then
/ 255, without rounding back to 8 bits.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from bench.errors import HarnessError

OFFLINE_ENV = "BENCH_OFFLINE"
DOWNLOAD_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Source:
    name: str
    torchvision_class: str
    folder: str  # relative to the data root
    split_kwargs: Callable[[str], dict[str, Any]]
    fetch_note: str = ""  # extra advice where torchvision's download often fails


def _train_flag(split: str) -> dict[str, Any]:
    return {"train": split == "train"}


SOURCES: dict[str, Source] = {
    "mnist": Source("mnist", "MNIST", "MNIST/raw", _train_flag),
    "fashion_mnist": Source("fashion_mnist", "FashionMNIST", "FashionMNIST/raw", _train_flag),
    "cifar10": Source("cifar10", "CIFAR10", "cifar-10-batches-py", _train_flag),
    "celeba": Source(
        "celeba", "CelebA", "celeba", lambda split: {"split": split, "target_type": []},
        "torchvision fetches CelebA from Google Drive and needs `pip install gdown`; when Drive refuses (quota), "
        "put img_align_celeba.zip (unzipped) and the list_*.txt / identity_CelebA.txt files from "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html into that folder"),
}


def offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def missing_error(name: str, root: Path, reason: str) -> HarnessError:
    src = SOURCES[name]
    where = root / src.folder
    note = f"; {src.fetch_note}" if src.fetch_note else ""
    return HarnessError(
        f"dataset {name}: its files are not in {where} ({reason}). Fetch them on a machine with network with "
        f"`bench fetch {name} --root DIR` and copy DIR/{src.folder} to {where}, or set [data] root in the study "
        f"file (or $BENCH_DATA) to a folder that holds them{note}")


def open_split(name: str, root: Path, split: str, download: bool | None = None, transform: Any = None) -> Any:
    """The torchvision dataset object of one split; downloads missing files unless offline."""
    import torchvision.datasets

    src = SOURCES[name]
    cls = getattr(torchvision.datasets, src.torchvision_class)
    kwargs = dict(src.split_kwargs(split), transform=transform)
    try:
        return cls(str(root), download=False, **kwargs)
    except RuntimeError:
        pass  # not there (or failing its checksums): try to fetch it
    if download is None:
        download = not offline()
    if not download:
        raise missing_error(name, root, f"${OFFLINE_ENV} is set, so no download was tried")
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return cls(str(root), download=True, **kwargs)
    except Exception as e:  # URLError, OSError, RuntimeError (checksum), ImportError (gdown): all mean "not fetched"
        lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [""]
        said = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # torchvision puts the cause last
        raise missing_error(name, root, f"the download failed: {type(e).__name__}: {said}") from None


def _tensor_split(name: str, root: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    ds = open_split(name, root, split)
    data = ds.data if isinstance(ds.data, torch.Tensor) else torch.from_numpy(np.asarray(ds.data))
    if data.ndim == 3:  # (N, H, W) grey
        data = data.unsqueeze(1)
    else:  # (N, H, W, C) colour
        data = data.permute(0, 3, 1, 2)
    images = data.contiguous().float().div_(255.0)  # (N, C, H, W) in [0, 1]
    return images, torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64)


def crop_160_resize_64(image: torch.Tensor) -> torch.Tensor:
    """(C, H, W) uint8/float 0..255 -> (C, 64, 64) float in [0, 1], as compare_gan's CelebA preprocessing."""
    c, h, w = image.shape
    top, left = max((h - 160) // 2, 0), max((w - 160) // 2, 0)
    x = image[:, top : top + 160, left : left + 160].float()
    return resize_bilinear_tf1(x.unsqueeze(0), 64, 64)[0] / 255.0


def resize_bilinear_tf1(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """TensorFlow 1's `resize_bilinear(align_corners=False)`: source = target * (in / out), no half-pixel
    offset and no antialiasing. (B, C, H, W) -> (B, C, height, width)."""

    def taps(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        src = torch.arange(n_out, dtype=torch.float64) * (n_in / n_out)
        i0 = src.floor().long().clamp(max=n_in - 1)
        return i0, (i0 + 1).clamp(max=n_in - 1), (src - i0).to(x.dtype)

    r0, r1, fr = taps(x.shape[-2], height)
    x = x[..., r0, :] * (1 - fr)[:, None] + x[..., r1, :] * fr[:, None]
    c0, c1, fc = taps(x.shape[-1], width)
    return x[..., c0] * (1 - fc) + x[..., c1] * fc


class LazyImages(torch.utils.data.Dataset):
    """A split decoded on access: `[i]` -> (C, H, W), `[a:b]` -> (n, C, H, W); picklable for DataLoader workers."""

    def __init__(self, dataset: Any, sample_shape: tuple[int, int, int], identity: str):
        self.dataset = dataset
        self.shape = (len(dataset), *sample_shape)
        self.identity = identity

    def __len__(self) -> int:
        return self.shape[0]

    def _one(self, i: int) -> torch.Tensor:
        return self.dataset[i][0]

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, slice):
            return torch.stack([self._one(i) for i in range(*index.indices(len(self)))])
        return self._one(int(index))


def _pil_to_tensor(image: Any) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image.convert("RGB"), dtype=np.uint8).copy()).permute(2, 0, 1)


def _celeba_transform(image: Any) -> torch.Tensor:
    return crop_160_resize_64(_pil_to_tensor(image))


def _celeba_split(root: Path, split: str) -> LazyImages:
    ds = open_split("celeba", root, split, transform=_celeba_transform)
    sums = ",".join(md5 for _, md5, _ in ds.file_list)
    identity = f"celeba|{split}|{len(ds)} files|{hashlib.sha256(sums.encode()).hexdigest()[:16]}|crop160-tf1bilinear64"
    return LazyImages(ds, (3, 64, 64), identity)


def load(name: str, root: Path):
    """The Data of a torchvision dataset."""
    from bench.data.base import Data

    where = str(root / SOURCES[name].folder)
    if name == "celeba":
        return Data(name, _celeba_split(root, "train"), _celeba_split(root, "test"), source=where)
    train, train_labels = _tensor_split(name, root, "train")
    test, test_labels = _tensor_split(name, root, "test")
    return Data(name, train, test, train_labels, test_labels, source=where)


def fetch(name: str, root: Path) -> str:
    """Download both splits into `root` now (whatever $BENCH_OFFLINE says); returns where they are."""
    for split in ("train", "test"):
        open_split(name, root, split, download=True)
    return str(root / SOURCES[name].folder)
