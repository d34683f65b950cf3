"""Architectures: one registry, the same networks for every variant (PROTOCOL.md, "Architecture").

`infogan` is the InfoGAN-style pair used by Lucic et al. for every dataset:
  D: conv64 4x4 s2 -> lrelu(0.2) -> conv128 4x4 s2 -> [BN] -> lrelu -> FC1024 -> [BN] -> lrelu -> FC1
  G: FC1024 -> BN -> lrelu -> FC 128*(H/4)*(W/4) -> BN -> lrelu -> deconv64 4x4 s2 -> BN -> lrelu
     -> deconv C 4x4 s2 -> sigmoid
Init N(0, 0.02) with zero biases; BN momentum 0.999 in TensorFlow's convention (PyTorch momentum
0.001) and eps 1e-3. D returns raw logits (no sigmoid), so any loss can be put on it. `width`
scales every channel/unit count for fast CPU runs; width 1.0 is the paper's network.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

BN_MOMENTUM = 1.0 - 0.999  # TF's decay 0.999 expressed as PyTorch's momentum
BN_EPS = 1e-3
LRELU = 0.2


def _w(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases for conv/linear layers; BN starts at gamma 1, beta 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _bn(n: int, dim: int, on: bool) -> nn.Module:
    if not on:
        return nn.Identity()
    cls = nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d
    return cls(n, eps=BN_EPS, momentum=BN_MOMENTUM)


class InfoGANGenerator(nn.Module):
    def __init__(self, z_dim: int, shape: tuple[int, int, int], width: float = 1.0):
        super().__init__()
        c, h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"infogan needs image sides divisible by 4, got {h}x{w}")
        self.shape = shape
        fc, ch, dc = _w(1024, width), _w(128, width), _w(64, width)
        self.ch, self.h4, self.w4 = ch, h // 4, w // 4
        self.fc = nn.Sequential(
            nn.Linear(z_dim, fc), _bn(fc, 1, True), nn.LeakyReLU(LRELU),
            nn.Linear(fc, ch * self.h4 * self.w4), _bn(ch * self.h4 * self.w4, 1, True), nn.LeakyReLU(LRELU),
        )
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(ch, dc, 4, 2, 1), _bn(dc, 2, True), nn.LeakyReLU(LRELU),
            nn.ConvTranspose2d(dc, c, 4, 2, 1), nn.Sigmoid(),
        )
        init_weights(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # (B, z_dim) -> (B, C, H, W) in [0, 1]
        x = self.fc(z).view(z.shape[0], self.ch, self.h4, self.w4)
        return self.deconv(x)


class InfoGANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: float = 1.0, batchnorm: bool = True):
        super().__init__()
        c, h, w = shape
        c1, c2, fc = _w(64, width), _w(128, width), _w(1024, width)
        self.conv = nn.Sequential(
            nn.Conv2d(c, c1, 4, 2, 1), nn.LeakyReLU(LRELU),
            nn.Conv2d(c1, c2, 4, 2, 1), _bn(c2, 2, batchnorm), nn.LeakyReLU(LRELU),
        )
        if h % 4 or w % 4:
            raise ValueError(f"infogan needs image sides divisible by 4, got {h}x{w}")
        flat = c2 * (h // 4) * (w // 4)
        self.fc = nn.Sequential(nn.Linear(flat, fc), _bn(fc, 1, batchnorm), nn.LeakyReLU(LRELU), nn.Linear(fc, 1))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B,) raw logits
        return self.fc(self.conv(x).flatten(1)).squeeze(1)


@dataclass(frozen=True)
class Architecture:
    name: str
    doc: str
    generator: Callable[[int, tuple[int, int, int], float], nn.Module]
    discriminator: Callable[[tuple[int, int, int], float, bool], nn.Module]


ARCHITECTURES: dict[str, Architecture] = {
    "infogan": Architecture(
        "infogan",
        "InfoGAN-style conv G/D of Lucic et al. (28x28, 32x32, 64x64; D outputs logits)",
        lambda z_dim, shape, width: InfoGANGenerator(z_dim, shape, width),
        lambda shape, width, batchnorm: InfoGANDiscriminator(shape, width, batchnorm),
    ),
}
