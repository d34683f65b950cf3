"""Discriminator options that apply to any architecture: `fn(D, hp) -> D`, listed in a variant's
recipe (`Variant.d_options`) and applied after D is built, so every loss can take them.

- `spectral_norm`: Miyato et al. 2018, every Conv/ConvTranspose/Linear weight divided by its
  largest singular value, estimated by one power iteration per forward pass (torch's
  parametrization). The later-study option of Kurach et al. 2019.
- `minibatch_discrimination`: Salimans et al. 2016, "Improved techniques for training GANs",
  sec. 3.2. The features f(x_i) ∈ R^A entering D's output layer are multiplied by a tensor
  T ∈ R^{A×B×C} to give M_i ∈ R^{B×C}; for each of the B kernels,
  o(x_i)_b = Σ_{j≠i} exp(-‖M_{i,b} - M_{j,b}‖₁), and the output layer sees [f(x_i), o(x_i)].
  B = hp["mbd_kernels"], C = hp["mbd_kernel_dim"] (their code's defaults: 100 and 5). The output
  layer's weights on o start at zero, so D starts as the plain D.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch import nn

from bench.gan.architectures import last_linear

DOption = Callable[[nn.Module, Mapping[str, Any]], nn.Module]


def spectral_norm(D: nn.Module, hp: Mapping[str, Any]) -> nn.Module:
    """Spectrally normalise every weight layer of D in place; returns D. Layers already normalised
    (the `sndcgan` architecture's) are left as they are."""
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
              and not nn.utils.parametrize.is_parametrized(m, "weight")]
    for m in layers:
        # ConvTranspose2d keeps output channels in dim 1 of its weight.
        nn.utils.parametrizations.spectral_norm(m, dim=1 if isinstance(m, nn.ConvTranspose2d) else 0)
    return D


class MinibatchDiscrimination(nn.Module):
    """Salimans et al.'s layer in front of D's output layer: (B, A) -> output layer([f, o(f)])."""

    def __init__(self, head: nn.Linear, kernels: int, kernel_dim: int):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(head.in_features, kernels * kernel_dim) * 0.02)  # N(0, 0.02) as every D weight
        self.head = nn.Linear(head.in_features + kernels, head.out_features)
        with torch.no_grad():
            # D starts as the plain D: o(x) sums up to batch-size terms per kernel, so N(0, 0.02)
            # weights on it would saturate the first logits; they start at zero and are learned.
            self.head.weight.zero_()
            self.head.weight[:, : head.in_features].normal_(0.0, 0.02)
            self.head.bias.zero_()

    def features(self, f: torch.Tensor) -> torch.Tensor:  # (B, A) -> (B, kernels)
        m = (f @ self.T).view(f.shape[0], self.kernels, self.kernel_dim).transpose(0, 1)  # (kernels, B, C)
        l1 = torch.cdist(m, m, p=1.0)  # (kernels, B, B), ‖M_i,b - M_j,b‖₁
        return torch.exp(-l1).sum(dim=2).transpose(0, 1) - 1.0  # (B, kernels); drop j = i, whose term is exp(0) = 1

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([f, self.features(f)], dim=1))


def minibatch_discrimination(D: nn.Module, hp: Mapping[str, Any]) -> nn.Module:
    """Put a minibatch discrimination layer in front of D's output layer (its last nn.Linear)."""
    parent, name, head = last_linear(D)
    setattr(parent, name, MinibatchDiscrimination(head, int(hp["mbd_kernels"]), int(hp["mbd_kernel_dim"])))
    return D
