"""The seed's Figure 2 (Arjovsky et al. 2017) as numbers: on two Gaussians far apart, the gradient
a fake sample gets through a near-optimal GAN discriminator (minimax G loss) vanishes at the fake
mode, orders of magnitude below a WGAN critic's, and the WGAN-GP critic's gradient is close to
constant between the modes. Then the real CLI writes the PNG and the numbers."""

from __future__ import annotations

import json

import pytest

from bench.figures import critic

from .conftest import run_cli


@pytest.fixture(scope="module")
def figure():
    return critic.compute(critic.Setting(steps=800, batch=128, grid=201))


def test_saturated_discriminator_gives_a_vanishing_gradient(figure):
    curves, summary = figure
    assert summary["d_gan_at_fake_mode"] < 1e-3 and summary["d_gan_at_real_mode"] > 1 - 1e-3  # near optimal
    g = summary["grad_at_fake_mode"]
    for critic_name in ("wgan", "wgan_gp"):
        assert g[critic_name] > 0  # pushes the fake mode towards the real one (+x)
        assert abs(g["gan_minimax"]) < 1e-3 * g[critic_name], summary
    # The WGAN-GP critic is close to linear between the modes: its gradient barely changes there.
    assert summary["grad_spread_between_modes"]["wgan_gp"] < 0.1, summary
    between = [i for i, x in enumerate(curves["x"]) if -2.0 <= x <= 2.0]
    assert all(curves["grad_wgan"][i] > 0 and curves["grad_wgan_gp"][i] > 0 for i in between)


def test_cli_writes_png_and_numbers(env, tmp_path):
    out = tmp_path / "fig"
    r = run_cli("figure", "critic", "--out", str(out), "--steps", "20", env=env)
    assert r.returncode == 0, r.stderr
    assert (out / "critic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "critic.json").read_text())
    assert summary["setting"]["steps"] == 20
    header = (out / "critic.csv").read_text().splitlines()[0].split(",")
    assert {"x", "d_gan", "critic_wgan", "critic_wgan_gp", "grad_gan_minimax", "grad_wgan_gp"} <= set(header)
    bad = run_cli("figure", "critic", "--steps", "0", env=env)
    assert bad.returncode == 2 and "--steps" in bad.stderr
