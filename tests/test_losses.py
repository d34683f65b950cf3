"""Losses and penalties against hand-computed values on fixed inputs, and a one-step smoke test
of every registered variant (parametrized over the registry, so a new entry is tested too)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench import losses, penalties
from bench.variants import VARIANTS

REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([-1.0, 1.0])


def log_sigmoid(x: float) -> float:
    return math.log(1.0 / (1.0 + math.exp(-x)))


def log_one_minus_sigmoid(x: float) -> float:
    return math.log(1.0 - 1.0 / (1.0 + math.exp(-x)))


def test_gan_d_loss_matches_formula():
    expected_real = -(log_sigmoid(0.0) + log_sigmoid(2.0)) / 2
    expected_fake = -(log_one_minus_sigmoid(-1.0) + log_one_minus_sigmoid(1.0)) / 2
    terms = losses.gan_d(REAL, FAKE)
    assert terms["d_real"].item() == pytest.approx(expected_real, rel=1e-6)
    assert terms["d_fake"].item() == pytest.approx(expected_fake, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(expected_real + expected_fake, rel=1e-6)


def test_minimax_g_is_saturating_form():
    expected = (log_one_minus_sigmoid(-1.0) + log_one_minus_sigmoid(1.0)) / 2  # E log(1 - D(G(z)))
    assert losses.minimax_g(FAKE)["loss"].item() == pytest.approx(expected, rel=1e-6)


def test_non_saturating_g():
    expected = -(log_sigmoid(-1.0) + log_sigmoid(1.0)) / 2  # -E log D(G(z))
    assert losses.non_saturating_g(FAKE)["loss"].item() == pytest.approx(expected, rel=1e-6)


def test_wasserstein_terms():
    terms = losses.wasserstein_d(REAL, FAKE)
    assert terms["loss"].item() == pytest.approx(-1.0 + 0.0)  # -mean(real) + mean(fake)
    assert terms["w_distance"].item() == pytest.approx(1.0)
    assert losses.wasserstein_g(FAKE)["loss"].item() == pytest.approx(0.0)
    assert losses.wasserstein_g(torch.tensor([3.0, 5.0]))["loss"].item() == pytest.approx(-4.0)


def test_losses_accept_column_logits():
    a = losses.gan_d(REAL.view(2, 1), FAKE.view(2, 1))["loss"]
    b = losses.gan_d(REAL, FAKE)["loss"]
    assert a.item() == pytest.approx(b.item())


def linear_d(w: torch.Tensor) -> nn.Module:
    lin = nn.Linear(w.numel(), 1)
    with torch.no_grad():
        lin.weight.copy_(w.view(1, -1))
        lin.bias.fill_(0.3)
    return nn.Sequential(nn.Flatten(), lin)


@pytest.mark.parametrize("w, lam", [([3.0, 4.0, 0.0, 0.0], 10.0), ([0.6, 0.0, 0.0, 0.8], 2.0), ([0.1, 0.1, 0.1, 0.1], 0.5)])
def test_wgangp_penalty_linear_critic(w, lam):
    """For D(x) = w.x + b the input gradient is w everywhere: penalty = λ (‖w‖ - 1)²."""
    D = linear_d(torch.tensor(w))
    x_real, x_fake = torch.randn(8, 1, 2, 2), torch.randn(8, 1, 2, 2)
    terms = penalties.wgangp_penalty(D, x_real, x_fake, {"gp_lambda": lam})
    norm = math.sqrt(sum(v * v for v in w))
    assert terms["grad_norm"].item() == pytest.approx(norm, rel=1e-5)
    assert terms["loss"].item() == pytest.approx(lam * (norm - 1) ** 2, rel=1e-5, abs=1e-7)


def test_wgangp_penalty_is_differentiable_in_d():
    D = linear_d(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    terms = penalties.wgangp_penalty(D, torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2), {"gp_lambda": 1.0})
    terms["loss"].backward()
    # d/dw (‖w‖ - 1)² = 2 (‖w‖ - 1) w / ‖w‖ = 2 * 4 * w / 5
    assert torch.allclose(D[1].weight.grad.view(-1), torch.tensor([4.8, 6.4, 0.0, 0.0]), rtol=1e-4)


def test_clip_weights_bounds_every_parameter():
    D = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1))
    with torch.no_grad():
        for p in D.parameters():
            p.uniform_(-5, 5)
    penalties.clip_weights(D, {"clip": 0.01})
    for p in D.parameters():
        assert p.abs().max().item() <= 0.01 + 1e-9
    assert any((p.abs() == 0.01).any() for p in D.parameters())  # values were actually clipped


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_registry_entry_is_consistent(name):
    v = VARIANTS[name]
    for kind in ("wide", "narrow"):
        space = v.space(kind)
        assert set(space) == set(v.defaults)
    for k, p in v.wide.items():
        assert p.contains(v.defaults[k]), f"{name}: default {k}={v.defaults[k]} outside the wide space"
