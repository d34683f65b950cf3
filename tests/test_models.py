"""Architectures against PROTOCOL.md and compare_gan: shapes, parameter counts by hand, init, BN, logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.gan.architectures import ARCHITECTURES


def conv(k: int, cin: int, cout: int) -> int:  # a k x k (de)convolution with bias
    return k * k * cin * cout + cout


def fc(i: int, o: int) -> int:
    return i * o + o


def bn(c: int) -> int:  # gamma and beta
    return 2 * c


def infogan_counts(c: int, h: int, w: int, d_bn: bool = True) -> tuple[int, int]:
    """PROTOCOL.md, transcribed layer by layer (z 64)."""
    flat = 128 * (h // 4) * (w // 4)
    g = fc(64, 1024) + bn(1024) + fc(1024, flat) + bn(flat) + conv(4, 128, 64) + bn(64) + conv(4, 64, c)
    d = conv(4, c, 64) + conv(4, 64, 128) + fc(flat, 1024) + fc(1024, 1) + (bn(128) + bn(1024) if d_bn else 0)
    return g, d


def dcgan_counts(c: int, h: int, w: int) -> tuple[int, int]:
    """compare_gan dcgan.py: FC -> 512@H/16, deconv5 256, 128, 64, C; D conv5 64, 128, 256, 512, FC1 (BN after 2-4)."""
    g = fc(64, 512 * (h // 16) * (w // 16)) + bn(512) + conv(5, 512, 256) + bn(256) + conv(5, 256, 128) + bn(128) \
        + conv(5, 128, 64) + bn(64) + conv(5, 64, c)
    d = conv(5, c, 64) + conv(5, 64, 128) + bn(128) + conv(5, 128, 256) + bn(256) + conv(5, 256, 512) + bn(512) \
        + fc(512 * (h // 16) * (w // 16), 1)
    return g, d


def sndcgan_counts(c: int, h: int, w: int) -> tuple[int, int]:
    """compare_gan sndcgan.py: FC -> 512@H/8 with BN on the flat vector, deconv4 256, 128, 64, deconv3 C;
    D conv3 64, conv4 128, conv3 128, conv4 256, conv3 256, conv4 512, conv3 512, FC1; no BN in D."""
    flat = 512 * (h // 8) * (w // 8)
    g = fc(64, flat) + bn(flat) + conv(4, 512, 256) + bn(256) + conv(4, 256, 128) + bn(128) + conv(4, 128, 64) + bn(64) + conv(3, 64, c)
    d = conv(3, c, 64) + conv(4, 64, 128) + conv(3, 128, 128) + conv(4, 128, 256) + conv(3, 256, 256) \
        + conv(4, 256, 512) + conv(3, 512, 512) + fc(flat, 1)
    return g, d


def count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_infogan_mnist_parameter_counts_by_hand():
    # G: 66,560 + 2,048 + 6,428,800 + 12,544 + 131,136 + 128 + 1,025; D: 1,088 + 131,200 + 256 + 6,423,552 + 2,048 + 1,025
    arch = ARCHITECTURES["infogan"]
    assert count(arch.generator(64, (1, 28, 28), 1.0)) == 6_642_241 == infogan_counts(1, 28, 28)[0]
    assert count(arch.discriminator((1, 28, 28), 1.0, True)) == 6_559_169 == infogan_counts(1, 28, 28)[1]


CASES = [("infogan", (1, 28, 28), infogan_counts), ("infogan", (3, 32, 32), infogan_counts), ("infogan", (3, 64, 64), infogan_counts),
         ("dcgan", (3, 32, 32), dcgan_counts), ("dcgan", (3, 64, 64), dcgan_counts),
         ("sndcgan", (3, 32, 32), sndcgan_counts), ("sndcgan", (3, 64, 64), sndcgan_counts)]


@pytest.mark.parametrize("name, shape, counts", CASES, ids=[f"{n}-{s[1]}" for n, s, _ in CASES])
def test_conv_architectures_shapes_and_parameter_counts(name, shape, counts):
    arch = ARCHITECTURES[name]
    assert arch.accepts(shape) is None
    G, D = arch.generator(64, shape, 1.0), arch.discriminator(shape, 1.0, True)
    assert (count(G), count(D)) == counts(*shape)
    z = torch.rand(3, 64) * 2 - 1
    x = G(z)
    assert x.shape == (3, *shape) and 0 <= x.min() and x.max() <= 1
    assert D(x).shape == (3,)


def test_infogan_without_d_batchnorm_drops_exactly_the_two_bn_layers():
    D = ARCHITECTURES["infogan"].discriminator((1, 28, 28), 1.0, False)
    assert count(D) == infogan_counts(1, 28, 28, d_bn=False)[1]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())


def test_width_multiplier_scales_every_layer():
    w = 0.25  # 1024 -> 256, 128 -> 32, 64 -> 16
    G = ARCHITECTURES["infogan"].generator(64, (1, 28, 28), w)
    D = ARCHITECTURES["infogan"].discriminator((1, 28, 28), w, True)
    flat = 32 * 7 * 7
    assert count(G) == fc(64, 256) + bn(256) + fc(256, flat) + bn(flat) + conv(4, 32, 16) + bn(16) + conv(4, 16, 1)
    assert count(D) == conv(4, 1, 16) + conv(4, 16, 32) + bn(32) + fc(flat, 256) + bn(256) + fc(256, 1)


def test_infogan_init_batchnorm_activations_and_raw_logits():
    torch.manual_seed(0)
    G = ARCHITECTURES["infogan"].generator(64, (1, 28, 28), 1.0)
    D = ARCHITECTURES["infogan"].discriminator((1, 28, 28), 1.0, True)
    for net in (G, D):
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                if m.weight.numel() > 10_000:
                    assert abs(m.weight.std().item() - 0.02) < 0.002 and abs(m.weight.mean().item()) < 0.002
                assert torch.all(m.bias == 0)
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                assert m.momentum == pytest.approx(0.001) and m.eps == pytest.approx(1e-3)  # TF decay 0.999, eps 1e-3
                assert torch.all(m.weight == 1) and torch.all(m.bias == 0)
    g_acts = [m for m in G.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh))]
    assert [type(m).__name__ for m in g_acts] == ["LeakyReLU"] * 3 + ["Sigmoid"]
    assert all(m.negative_slope == 0.2 for m in g_acts[:3])
    assert sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in G.modules()) == 3  # BN in G always
    assert not any(isinstance(m, (nn.Sigmoid, nn.Tanh)) for m in D.modules())
    with torch.no_grad():  # a logit is unbounded: scale the last layer and the output leaves [0, 1]
        D.fc[-1].bias.fill_(5.0)
        assert (D(torch.rand(4, 1, 28, 28)) > 1).all()


def test_sndcgan_spectral_norm_bounds_every_d_layer():
    torch.manual_seed(0)
    D = ARCHITECTURES["sndcgan"].discriminator((3, 32, 32), 0.25, True)
    layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 8 and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert all(m.parametrizations.weight.original.std().item() == pytest.approx(0.02, rel=0.2) for m in layers[1:])
    for _ in range(30):  # power iteration converges over forward passes in train mode
        D(torch.rand(2, 3, 32, 32))
    for m in layers:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2).item()
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_mlp_on_points():
    arch = ARCHITECTURES["mlp"]
    G, D = arch.generator(64, (2,), 1.0), arch.discriminator((2,), 1.0, True)
    assert count(G) == fc(64, 128) + fc(128, 128) + fc(128, 2)
    assert count(D) == fc(2, 128) + fc(128, 1)  # Metz et al.'s D has no BN ...
    assert count(arch.discriminator((2,), 1.0, False)) == count(D)  # ... whatever d_batchnorm says
    x = G(torch.rand(5, 64) * 2 - 1)
    assert x.shape == (5, 2) and D(x).shape == (5,)


@pytest.mark.parametrize("name, shape, fits", [
    ("infogan", (2,), False), ("infogan", (1, 30, 30), False), ("dcgan", (1, 28, 28), False),
    ("sndcgan", (1, 28, 28), False), ("mlp", (1, 28, 28), False), ("mlp", (2,), True), ("sndcgan", (3, 64, 64), True),
])
def test_accepts_says_which_shapes_fit(name, shape, fits):
    problem = ARCHITECTURES[name].accepts(shape)
    assert (problem is None) == fits
    if not fits:
        assert isinstance(problem, str) and problem


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_trains_one_step_at_small_width(name):
    shape = {"mlp": (2,), "infogan": (1, 28, 28)}.get(name, (3, 32, 32))
    arch = ARCHITECTURES[name]
    G, D = arch.generator(16, shape, 0.125), arch.discriminator(shape, 0.125, True)
    loss = nn.functional.softplus(-D(G(torch.rand(4, 16) * 2 - 1))).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters())
