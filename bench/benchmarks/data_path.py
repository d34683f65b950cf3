"""Data-path benchmark: the device-resident BatchStream against a torchvision DataLoader.

`data_path` trains the paper's `infogan` MNIST networks (width 1.0, z 64, batch 64, ns_gan steps:
one D update on a real and a fake batch, one G update) side by side in one process, the only
difference being where real batches come from:
- `device`: data.BatchStream, the harness's path: the split is one tensor on the training device
  and a step draws a slice of a seeded permutation (no workers, no collation, no host copy);
- `dataloader`: the usual PyTorch recipe, `torchvision.datasets.MNIST(transform=ToTensor())` read
  from idx files on disk, `DataLoader(batch_size=64, shuffle=True, drop_last=True, num_workers=2,
  persistent_workers=True, pin_memory on CUDA)` and `.to(device)` per batch.
The images are the 4,000 real digits5k training images (MNIST digits), written as MNIST idx files
in a temporary folder, because real MNIST cannot be downloaded offline; the networks are the
same at any number of images. Figures: steps/s of each side (median over interleaved repeats) and
their ratio, plus batches/s of the two data paths alone (no model), where the gap is not hidden
by the networks' compute.
"""

from __future__ import annotations

import struct
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from bench import data as data_mod
from bench.benchmarks import benchmark
from bench.benchmarks.timing import median, ratio, side_by_side
from bench.data import stream
from bench.gan.architectures import ARCHITECTURES

WORKERS = 2
BATCH, Z_DIM, WIDTH = 64, 64, 1.0


def write_mnist_idx(root: Path, train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor) -> None:
    """Images (N, 1, 28, 28) in [0, 1] as torchvision's MNIST raw files (uncompressed idx) under root/MNIST/raw."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)

    def idx(path: Path, array: np.ndarray) -> None:
        header = struct.pack(">HBB", 0, 8, array.ndim) + b"".join(struct.pack(">I", s) for s in array.shape)
        path.write_bytes(header + array.astype(np.uint8).tobytes())

    for prefix, x, y in (("train", train, train_labels), ("t10k", test, test_labels)):
        idx(raw / f"{prefix}-images-idx3-ubyte", np.rint(x[:, 0].numpy() * 255))
        idx(raw / f"{prefix}-labels-idx1-ubyte", y.numpy())


def _forever(loader: torch.utils.data.DataLoader):
    while True:
        yield from loader


def _networks(device: torch.device):
    torch.manual_seed(0)
    arch = ARCHITECTURES["infogan"]
    G = arch.generator(Z_DIM, (1, 28, 28), WIDTH).to(device)
    D = arch.discriminator((1, 28, 28), WIDTH, True).to(device)
    return G, D, torch.optim.Adam(G.parameters(), 5e-5, betas=(0.0, 0.999)), torch.optim.Adam(D.parameters(), 5e-5, betas=(0.0, 0.999))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gan_steps(next_batch: Callable[[], torch.Tensor], nets, steps: int, device: torch.device) -> float:
    """Seconds for `steps` ns_gan steps drawing real batches from `next_batch`."""
    G, D, opt_g, opt_d = nets
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        real = next_batch()  # (B, 1, 28, 28) on the device
        with torch.no_grad():
            fake = G(torch.rand(BATCH, Z_DIM, device=device) * 2 - 1)
        loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-D(G(torch.rand(BATCH, Z_DIM, device=device) * 2 - 1))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    _sync(device)
    return time.perf_counter() - t0


def fetch_only(next_batch: Callable[[], torch.Tensor], batches: int, device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(batches):
        next_batch()
    _sync(device)
    return time.perf_counter() - t0


@benchmark("data_path")
def data_path(quick: bool) -> dict[str, Any]:
    """steps/s of infogan MNIST (width 1, batch 64): device-resident BatchStream / torchvision DataLoader."""
    import torchvision

    # 3 rounds of width-1 steps: at 1.5 s a step (train_throughput) the 5 rounds and warm-up this had were about
    # 2.4 min of make bench's 15 (6 x 2 sides x 8 steps, estimated);
    # the data paths alone are cheap and keep 5
    steps, repeats, fetches = (2, 1, 20) if quick else (8, 3, 300)
    fetch_repeats = 1 if quick else 5
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    d = data_mod.load("digits5k", data_mod.resolve_root(""))
    with tempfile.TemporaryDirectory() as tmp:
        write_mnist_idx(Path(tmp), d.train, d.train_labels, d.test, d.test_labels)
        dataset = torchvision.datasets.MNIST(tmp, train=True, download=False, transform=torchvision.transforms.ToTensor())
        loader = torch.utils.data.DataLoader(
            dataset, batch_size=BATCH, shuffle=True, drop_last=True, num_workers=WORKERS, persistent_workers=True,
            pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(0))
        batches = _forever(loader)
        from_loader = lambda: next(batches)[0].to(device, non_blocking=True)  # noqa: E731
        on_device = stream.BatchStream(d.train, BATCH, seed=0, device=device)
        nets = {"device": _networks(device), "dataloader": _networks(device)}
        times = side_by_side({"device": lambda: gan_steps(on_device.next, nets["device"], steps, device),
                              "dataloader": lambda: gan_steps(from_loader, nets["dataloader"], steps, device)},
                             repeats, warmup=1)
        fetch = side_by_side({"device": lambda: fetch_only(on_device.next, fetches, device),
                              "dataloader": lambda: fetch_only(from_loader, fetches, device)}, fetch_repeats, warmup=1)
        del batches, loader
    return {
        "ratio": ratio({k: [1 / t for t in v] for k, v in times.items()}, "device", "dataloader"),
        "device_steps_per_s": round(steps / median(times["device"]), 3),
        "dataloader_steps_per_s": round(steps / median(times["dataloader"]), 3),
        "data_only_ratio": ratio({k: [1 / t for t in v] for k, v in fetch.items()}, "device", "dataloader"),
        "device_batches_per_s": round(fetches / median(fetch["device"]), 1),
        "dataloader_batches_per_s": round(fetches / median(fetch["dataloader"]), 1),
        "detail": {"device": str(device), "architecture": "infogan", "width": WIDTH, "batch": BATCH, "steps": steps,
                   "repeats": repeats, "fetch_repeats": fetch_repeats, "fetches": fetches, "workers": WORKERS, "images": len(d.train),
                   "seconds": times, "fetch_seconds": fetch},
        "command": "python -m bench.benchmarks data_path",
    }
