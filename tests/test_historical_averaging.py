"""Historical averaging (Salimans et al. 2016, sec. 3.3), checked by hand on a one-weight,
one-bias network: the running mean (1/t) Σᵢ θᵢ, the penalty λ‖θ - mean‖² and its gradient
2λ(θ - mean), and the training step keeping one history per player in the recipe state."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.gan import penalties, steps
from bench.gan.variants import VARIANTS
from bench.trial.train import build_nets, train_step


def tiny(w: float, b: float) -> nn.Linear:
    net = nn.Linear(1, 1)
    with torch.no_grad():
        net.weight.fill_(w)
        net.bias.fill_(b)
    return net


def test_running_mean_penalty_and_gradient_by_hand():
    net = tiny(1.0, -2.0)
    entry = penalties.track_mean(None, net)  # t = 1: the mean is θ₁ itself, the penalty zero
    assert entry.t == 1 and [m.item() for m in entry.mean] == [1.0, -2.0]
    assert penalties.historical_average(net, entry, {"ha_lambda": 3.0})["loss"].item() == 0.0

    with torch.no_grad():
        net.weight.fill_(4.0)
        net.bias.fill_(1.0)
    first = entry
    entry = penalties.track_mean(entry, net)  # mean of (1, -2) and (4, 1)
    assert entry.t == 2 and [m.item() for m in entry.mean] == [2.5, -0.5]
    assert [m.item() for m in first.mean] == [1.0, -2.0]  # the old state is left as it was

    with torch.no_grad():
        net.weight.fill_(7.0)
        net.bias.fill_(0.0)
    entry = penalties.track_mean(entry, net)  # mean of w: (1+4+7)/3 = 4, of b: (-2+1+0)/3 = -1/3
    assert entry.t == 3
    assert entry.mean[0].item() == pytest.approx(4.0) and entry.mean[1].item() == pytest.approx(-1 / 3)
    terms = penalties.historical_average(net, entry, {"ha_lambda": 0.5})
    # λ [(7 - 4)² + (0 + 1/3)²] = 0.5 (9 + 1/9)
    assert terms["loss"].item() == pytest.approx(0.5 * (9 + 1 / 9))
    assert terms["distance"].item() == pytest.approx((9 + 1 / 9) ** 0.5)
    terms["loss"].backward()  # the mean is a constant: ∂/∂θ = 2λ(θ - mean)
    assert net.weight.grad.item() == pytest.approx(2 * 0.5 * 3.0)
    assert net.bias.grad.item() == pytest.approx(2 * 0.5 * (1 / 3))


def test_training_step_keeps_each_players_mean_of_its_parameters():
    """Through train_step: before each update the player's current θ joins its mean, so after
    three steps with disc_iters 1 each mean is that of the three pre-update parameter sets, and
    each player's loss carries the penalty (logged as d_/g_param_penalty_*)."""
    v = VARIANTS["ns_gan_ha"]
    torch.manual_seed(0)
    hp = {**v.defaults, "ha_lambda": 2.0, "d_batchnorm": False}
    nets = build_nets(v, "mlp", (2,), 0.125, 4, hp, torch.device("cpu"))
    seen = {"d": [], "g": []}
    state = dict(v.initial_state)
    for step in range(1, 4):
        seen["d"].append([p.detach().clone() for p in nets.D.parameters()])
        seen["g"].append([p.detach().clone() for p in nets.G.parameters()])  # G moves after D in a step
        state, terms = train_step(v, nets, hp, state, step, torch.randn(8, 2), lambda: torch.rand(8, 4) * 2 - 1)
    for player in ("d", "g"):
        entry = state[penalties.historical_averaging.key(player)]
        assert entry.t == 3
        for i, m in enumerate(entry.mean):
            assert torch.allclose(m, sum(s[i] for s in seen[player]) / 3, atol=1e-6)
        assert terms[f"{player}_param_penalty_loss"].item() > 0.0  # θ₃ differs from the mean of θ₁..θ₃
    # The adversarial loss is logged on its own, as without the penalty.
    assert {"d_loss", "g_loss", "d_param_penalty_distance", "g_param_penalty_distance"} <= set(terms)


def test_penalty_reaches_the_update():
    """With a huge λ the D update pulls θ towards its mean: Adam's first step moves each weight by
    about lr in the sign of minus its gradient, and the penalty's gradient 2λ(θ - mean) = -2000
    outweighs the loss's, so every weight goes up by lr (the mean sits 1 above θ)."""
    v = VARIANTS["ns_gan_ha"]
    torch.manual_seed(0)
    hp = {**v.defaults, "d_batchnorm": False, "ha_lambda": 1e3}
    nets = build_nets(v, "mlp", (2,), 0.125, 4, hp, torch.device("cpu"))
    before = [p.detach().clone() for p in nets.D.parameters()]
    far = penalties.ParamMean(2, tuple(p + 1.0 for p in before))
    terms = steps.adversarial_d_step(v, nets, torch.randn(8, 2), torch.rand(8, 4) * 2 - 1,
                                     {penalties.historical_averaging.key("d"): far}, hp)
    n = sum(p.numel() for p in before)
    assert terms["param_penalty_loss"].item() == pytest.approx(1e3 * n)  # λ Σ 1² over every parameter
    for p, p0 in zip(nets.D.parameters(), before):
        assert torch.allclose(p - p0, torch.full_like(p, hp["learning_rate"]), rtol=1e-3)
