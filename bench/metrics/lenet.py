"""The LeNet digit classifier whose 128-d features define the offline "domain FID" (`fid_lenet_*`).

A domain FID is only comparable between two checkpoints when both were scored by the same network,
so the network is a fixed file shipped with the package (weights/lenet-digits5k.pt, about 1.7 MB),
identified by `WEIGHTS_SHA256` and verified every time it is loaded. Training it again on a
different machine or thread count gives different bits (float sums are not associative, and
PyTorch's CPU kernels split work by thread), which is why the weights ship instead of being trained
on first use.

The recipe that produced the file stays here so it can be checked and regenerated:
`python -m bench.metrics.lenet --out FILE` trains it single-threaded (torch.set_num_threads(1),
seeded, a fixed batch order), prints the sha256 and the test accuracy. On the machine the file was
made on, a fresh process reproduces it bit for bit whatever thread count the process started with
(tests/test_lenet_weights.py); another CPU may pick other vector kernels and differ in the last bits,
which changes nothing for users, who load the shipped file.

The sha256 is over the tensors themselves (key, dtype, shape and bytes, in key order), not over the
.pt container, so it names the weights whatever torch version serialised them.

Architecture after LeCun et al. (1998), "Gradient-based learning applied to document recognition",
in the common modern form (ReLU, max pooling); features are the 128 units before the class layer.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

RECIPE = "lenet-v1: conv32-pool-conv64-pool-fc128(relu, features)-fc10; adam 1e-3; 8 epochs; batch 128; seed 0; 1 CPU thread"
DATASET = "digits5k"  # the train split it learns from, the test split its accuracy is measured on
WEIGHTS_FILE = Path(__file__).parent / "weights" / "lenet-digits5k.pt"
WEIGHTS_SHA256 = "d895933f641245935a665a4531be82641d497b3035ed6461dec779cc2e77adfd"  # tensors_sha256 of the file
TEST_ACCURACY = 0.962  # on the 1,000 digits5k test images, as the recipe printed it


class MaxPool2x2(nn.MaxPool2d):
    """nn.MaxPool2d(2) with the same values computed as two strided elementwise maxima when no gradient is
    needed: PyTorch's CPU max_pool2d takes about 10x as long on the LeNet's activations (110 vs 11 ms for
    500 x 32 x 28 x 28 on one core, this machine), and was a third of a LeNet FID. A maximum rounds
    nothing, so the features are bit-identical (tests/test_lenet_weights.py); training keeps
    max_pool2d, whose gradient on ties the recipe's weights depend on."""

    def __init__(self) -> None:
        super().__init__(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return super().forward(x)
        h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2  # floor mode: an odd last row or column is dropped
        x = x[..., :h, :w]
        x = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
        return torch.maximum(x[..., 0::2], x[..., 1::2])


class LeNet(nn.Module):
    FEATURES = 128

    def __init__(self, shape: tuple[int, int, int] = (1, 28, 28), classes: int = 10):
        super().__init__()
        in_channels, h, w = shape
        self.trunk = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(), MaxPool2x2(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), MaxPool2x2(),
            nn.Flatten(), nn.Linear(64 * (h // 4) * (w // 4), self.FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(self.FEATURES, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) in [0, 1] -> (B, 128)
        return self.trunk(x * 2.0 - 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over (key, dtype, shape, little-endian bytes) of every tensor, in key order."""
    h = hashlib.sha256()
    for key in sorted(state):
        t = state[key].detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().astype(t.numpy().dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def train(data: Any) -> tuple[dict[str, torch.Tensor], float]:
    """The recipe: (state dict, test accuracy). Runs on one CPU thread so the result does not depend
    on how many threads the process was given; the caller's thread count is restored afterwards."""
    if data.train_labels is None or data.test_labels is None:
        raise ValueError(f"dataset {data.name} has no labels; the lenet extractor needs them")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        torch.manual_seed(0)
        model = LeNet(tuple(data.shape))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = data.train.cpu(), data.train_labels.cpu()
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
            acc = (model(data.test.cpu()).argmax(1) == data.test_labels.cpu()).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    return {k: v.detach().clone().contiguous() for k, v in sorted(model.state_dict().items())}, acc


def save(state: dict[str, torch.Tensor], path: Path) -> None:
    buf = io.BytesIO()
    torch.save(dict(sorted(state.items())), buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def load(device: torch.device, path: Path = WEIGHTS_FILE, sha256: str = WEIGHTS_SHA256) -> LeNet:
    """The shipped network, its weights verified against `sha256`; a missing, damaged or different
    file fails with one line naming it."""
    from bench import records
    from bench.errors import HarnessError

    state = records.load_weights(path)
    got = tensors_sha256(state) if isinstance(state, dict) else "not a state dict"
    if got != sha256:
        raise HarnessError(f"{path}: LeNet weights sha256 {got[:16]}... is not the recorded {sha256[:16]}... "
                           "(the file was changed or damaged; reinstall the package, or regenerate it with "
                           "`python -m bench.metrics.lenet --out FILE`)")
    model = LeNet()
    model.load_state_dict(state)
    return model.eval().requires_grad_(False).to(device)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.metrics.lenet", description="train the LeNet of the domain FID by its recipe")
    ap.add_argument("--out", type=Path, help="write the weights here (.pt state dict)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads of this process before the recipe forces 1 (tests use it)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from bench import data

    state, acc = train(data.load(DATASET, data.resolve_root("")))
    if args.out:
        save(state, args.out)
    print(f"sha256 {tensors_sha256(state)} test_accuracy {acc:.4f} threads_at_start {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
