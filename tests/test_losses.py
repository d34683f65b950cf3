"""Losses and penalties against hand-computed values on fixed inputs (a linear D makes every
gradient norm known in closed form), weight bounds after clipping, BEGAN's k_t update, and the
registry's consistency (parametrized over every variant, so a new entry is checked too)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bench.gan import losses, penalties
from bench.gan.variants import VARIANTS

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
    norm = math.sqrt(1e-4 + sum(v * v for v in w))  # compare_gan's sqrt(0.0001 + Σ g²)
    assert terms["grad_norm"].item() == pytest.approx(norm, rel=1e-5)
    assert terms["loss"].item() == pytest.approx(lam * (norm - 1) ** 2, rel=1e-5, abs=1e-7)


def test_wgangp_penalty_is_differentiable_in_d():
    D = linear_d(torch.tensor([3.0, 4.0, 0.0, 0.0]))
    terms = penalties.wgangp_penalty(D, torch.randn(4, 1, 2, 2), torch.randn(4, 1, 2, 2), {"gp_lambda": 1.0})
    terms["loss"].backward()
    # d/dw (‖w‖ - 1)² = 2 (‖w‖ - 1) w / ‖w‖ = 2 * 4 * w / 5 (the 1e-4 under the root moves it by < 1e-5)
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


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_least_squares_is_on_the_sigmoid_output():
    """compare_gan's LSGAN: 0.5 [E (D(x) - 1)² + E D(G(z))²] and 0.5 E (D(G(z)) - 1)², D = sigmoid."""
    d_real = ((sigmoid(0.0) - 1) ** 2 + (sigmoid(2.0) - 1) ** 2) / 2
    d_fake = (sigmoid(-1.0) ** 2 + sigmoid(1.0) ** 2) / 2
    terms = losses.least_squares_d(REAL, FAKE)
    assert terms["d_real"].item() == pytest.approx(d_real, rel=1e-6)
    assert terms["d_fake"].item() == pytest.approx(d_fake, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(0.5 * (d_real + d_fake), rel=1e-6)
    g = 0.5 * ((sigmoid(-1.0) - 1) ** 2 + (sigmoid(1.0) - 1) ** 2) / 2
    assert losses.least_squares_g(FAKE)["loss"].item() == pytest.approx(g, rel=1e-6)


def test_least_squares_logit_is_on_the_raw_output():
    terms = losses.least_squares_logit_d(REAL, FAKE)
    assert terms["loss"].item() == pytest.approx(0.5 * ((1 + 1) / 2 + (1 + 1) / 2))  # (0-1)², (2-1)²; (-1)², 1²
    assert losses.least_squares_logit_g(FAKE)["loss"].item() == pytest.approx(0.5 * (4 + 0) / 2)


def test_hinge():
    terms = losses.hinge_d(REAL, FAKE)  # relu(1 - [0, 2]) = [1, 0]; relu(1 + [-1, 1]) = [0, 2]
    assert terms["d_real"].item() == pytest.approx(0.5)
    assert terms["d_fake"].item() == pytest.approx(1.0)
    assert terms["loss"].item() == pytest.approx(1.5)
    assert losses.hinge.g(torch.tensor([3.0, 5.0]), {})["loss"].item() == pytest.approx(-4.0)


def test_began_losses_and_k_update():
    real, fake = torch.tensor([0.2, 0.4]), torch.tensor([0.1, 0.3])  # per-example reconstruction errors
    terms = losses.began_d(real, fake, {"k": 0.5})
    assert terms["l_real"].item() == pytest.approx(0.3) and terms["l_fake"].item() == pytest.approx(0.2)
    assert terms["loss"].item() == pytest.approx(0.3 - 0.5 * 0.2)
    assert losses.began_g(fake, {"k": 0.5})["loss"].item() == pytest.approx(0.2)
    hp = {"began_gamma": 0.75, "began_lambda_k": 1e-3}
    new = losses.began_update({"k": 0.5}, terms, hp)
    assert float(new["k"]) == pytest.approx(0.5 + 1e-3 * (0.75 * 0.3 - 0.2))  # k + λ_k (γ L(x) - L(G(z)))
    assert float(new["convergence"]) == pytest.approx(0.3 + abs(0.75 * 0.3 - 0.2))  # M
    # Unclipped as compare_gan ran it: k may leave [0, 1]; the paper's form clips it.
    below = losses.began_d(torch.tensor([0.1]), torch.tensor([0.9]), {"k": 0.0})
    assert float(losses.began_update({"k": 0.0}, below, {**hp, "began_lambda_k": 0.1})["k"]) == pytest.approx(0.1 * (0.075 - 0.9))
    assert float(losses.began_update_clipped({"k": 0.0}, below, {**hp, "began_lambda_k": 0.1})["k"]) == 0.0
    above = losses.began_d(torch.tensor([1.0]), torch.tensor([0.0]), {"k": 0.99})
    assert float(losses.began_update_clipped({"k": 0.99}, above, {**hp, "began_lambda_k": 0.1})["k"]) == 1.0


def test_bernoulli_elbo_by_hand():
    x = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    p = torch.tensor([0.9, 0.2, 0.6, 0.5]).view(1, 1, 2, 2)
    mu, sigma = torch.tensor([[0.5, -1.0]]), torch.tensor([[1.0, 0.5]])
    nll = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.5))
    kl = 0.5 * ((0.25 + 1 - math.log(1 + 1e-8) - 1) + (1 + 0.25 - math.log(0.25 + 1e-8) - 1))
    terms = losses.bernoulli_elbo(x, p, mu, sigma)
    assert terms["nll"].item() == pytest.approx(nll, rel=1e-6)
    assert terms["kl"].item() == pytest.approx(kl, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(nll + kl, rel=1e-6)
    # compare_gan sums over H, W and averages over batch and channels.
    x3, p3 = x.repeat(2, 3, 1, 1), p.repeat(2, 3, 1, 1)
    assert losses.bernoulli_elbo(x3, p3, mu.repeat(2, 1), sigma.repeat(2, 1))["nll"].item() == pytest.approx(nll, rel=1e-6)
    # Outputs of exactly 0 or 1 are clipped to [1e-8, 1 - 1e-8], never log(0).
    assert math.isfinite(losses.bernoulli_elbo(x, 1 - x, mu, sigma)["loss"].item())


def test_dragan_noise_is_uncentred_and_scaled_by_batch_std():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 4, 4)
    noise = penalties.dragan_perturb(x) - x
    std = x.std(unbiased=False).item()
    assert noise.min().item() >= 0.0 and noise.max().item() < 0.5 * std + 1e-6
    assert noise.mean().item() == pytest.approx(0.25 * std, rel=0.05)  # E 0.5 std U[0, 1) = std / 4


@pytest.mark.parametrize("w, lam", [([3.0, 4.0, 0.0, 0.0], 10.0), ([0.5, -0.5, 0.5, 0.5], 2.0)])
def test_dragan_penalty_linear_d_uses_the_sigmoid_gradient(w, lam):
    """For D_logit(x) = w.x + b, ∇ sigmoid(D_logit(x̂)) = s(1 - s) w with s = sigmoid(w.x̂ + b)."""
    D = linear_d(torch.tensor(w))
    x_real, x_fake = torch.rand(8, 1, 2, 2), torch.rand(8, 1, 2, 2)
    torch.manual_seed(3)
    terms = penalties.dragan_penalty(D, x_real, x_fake, {"gp_lambda": lam})
    torch.manual_seed(3)  # the same draws in the documented order: the noise of x_p, then α
    x_p = x_real + 0.5 * x_real.std(unbiased=False) * torch.rand_like(x_real)
    alpha = torch.rand(8, 1, 1, 1)
    x_hat = (x_real + alpha * (x_p - x_real)).flatten(1).double()
    s = torch.sigmoid(x_hat @ torch.tensor(w, dtype=torch.double) + 0.3)
    norm = (1e-4 + (s * (1 - s)) ** 2 * sum(v * v for v in w)).sqrt()
    assert terms["grad_norm"].item() == pytest.approx(norm.mean().item(), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(lam * ((norm - 1) ** 2).mean().item(), rel=1e-5)


@pytest.mark.parametrize("w, gamma", [([3.0, 4.0, 0.0, 0.0], 10.0), ([0.1, 0.2, 0.2, 0.4], 1.0)])
def test_r1_penalty_linear_d(w, gamma):
    """R1 on a linear D: (γ/2) ‖w‖², whatever the real batch; fake samples play no part."""
    D = linear_d(torch.tensor(w))
    terms = penalties.r1_penalty(D, torch.randn(8, 1, 2, 2), torch.full((8, 1, 2, 2), float("nan")), {"r1_gamma": gamma})
    sq = sum(v * v for v in w)
    assert terms["r1"].item() == pytest.approx(sq, rel=1e-6)
    assert terms["loss"].item() == pytest.approx(0.5 * gamma * sq, rel=1e-6)
    terms["loss"].backward()
    assert torch.allclose(D[1].weight.grad.view(-1), gamma * torch.tensor(w), rtol=1e-5)  # d/dw (γ/2)‖w‖² = γ w
