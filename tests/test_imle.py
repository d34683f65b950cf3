"""IMLE (Li & Malik 2018, issue 15 point 2): the matching and the loss by hand on a few points,
the step pulls the matched samples towards the data on every architecture, and no D is built."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch

from bench.gan import losses, steps
from bench.gan.architectures import ARCHITECTURES
from bench.gan.variants import VARIANTS
from bench.trial.train import build_nets, train_step


def test_matching_and_loss_by_hand():
    """Three data points in the plane, four samples. Distances, by hand:
      x0 = (0, 0): s0 (1, 0) 1, s1 (0, 3) 3, s2 (5, 5) 7.07, s3 (-2, 0) 2   -> s0, squared 1
      x1 = (4, 4): s2 at √2 (squared 2), s0 at 5, s1 at 4.12, s3 at 7.21    -> s2, squared 2
      x2 = (1, 1): s0 at 1 (squared 1), s1 at 2.24, s2 at 5.66, s3 at 3.16 -> s0, squared 1
    loss = (1 + 2 + 1) / (3 points x 2 coordinates) = 2/3; distance = (1 + √2 + 1) / 3;
    matched = |{s0, s2}| / 4 = 0.5."""
    x = torch.tensor([[0.0, 0.0], [4.0, 4.0], [1.0, 1.0]])
    s = torch.tensor([[1.0, 0.0], [0.0, 3.0], [5.0, 5.0], [-2.0, 0.0]])
    nearest = losses.imle_nearest(x, s)
    assert nearest.tolist() == [0, 2, 0]
    terms = losses.imle(x, s[nearest], nearest, len(s))
    assert terms["loss"].item() == pytest.approx(4 / 6)
    assert terms["distance"].item() == pytest.approx((2 + math.sqrt(2)) / 3)
    assert terms["matched"].item() == 0.5


def test_matching_reads_images_as_pixel_vectors():
    """(B, C, H, W) images match by L2 over all pixels: an image nearest to the second sample."""
    x = torch.zeros(1, 1, 2, 2)
    x[0, 0, 1, 1] = 1.0
    s = torch.stack([torch.ones(1, 2, 2), x[0] * 0.9, torch.zeros(1, 2, 2)])
    assert losses.imle_nearest(x, s).tolist() == [1]


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_one_step_pulls_the_matched_samples_towards_the_data(architecture):
    """On every architecture (IMLE needs only its G): no D parameters and no D optimizer; the pool
    is m = imle_samples x B draws of the variant's prior; one step brings the samples matched to
    the data closer to it (the same matched latents, G before and after, the same BN batches)."""
    v = VARIANTS["imle"]
    shape = {"mlp": (2,), "infogan": (1, 28, 28)}.get(architecture, (3, 32, 32))
    torch.manual_seed(0)
    hp = {**v.defaults, "imle_samples": 4}
    nets = build_nets(v, architecture, shape, 0.125, 8, hp, torch.device("cpu"))
    assert list(nets.D.parameters()) == [] and nets.opt_d is None
    x = torch.rand(8, *shape)
    drawn = []
    recipe = SimpleNamespace(latent=lambda u: drawn.append(v.latent(u)) or drawn[-1])
    G0 = copy.deepcopy(nets.G)

    terms = steps.imle_step(recipe, nets, x, torch.zeros(8, 8), {}, hp)
    (z_pool,) = drawn
    assert z_pool.shape == (32, 8)
    with torch.no_grad():
        pool = torch.cat([G0(z_pool[i : i + 8]) for i in range(0, 32, 8)])
        nearest = losses.imle_nearest(x, pool)
        before = losses.imle(x, G0(z_pool[nearest]), nearest, 32)
        after = losses.imle(x, nets.G(z_pool[nearest]), nearest, 32)
    assert terms["loss"].item() == pytest.approx(before["loss"].item(), rel=1e-5)
    assert terms["matched"].item() == before["matched"].item() == len(set(nearest.tolist())) / 32
    assert after["loss"].item() < before["loss"].item()


def test_a_training_step_logs_the_imle_terms():
    v = VARIANTS["imle"]
    torch.manual_seed(0)
    nets = build_nets(v, "mlp", (2,), 0.125, 8, dict(v.defaults), torch.device("cpu"))
    state, terms = train_step(v, nets, v.defaults, {}, 1, torch.rand(16, 2), lambda: v.latent(torch.rand(16, 8) * 2 - 1))
    assert set(terms) == {"g_loss", "g_distance", "g_matched"} and all(math.isfinite(float(t)) for t in terms.values())
    assert 0 < float(terms["g_matched"]) <= 16 / 160


def test_the_cli_runs_an_imle_study(env, tiny_study, tmp_path):
    """The real entry point (its memory check runs every variant's D on G's output): the trial
    completes with a finite FID and records the recipe with no D."""
    import json

    from bench import records
    from bench.cli import main as bench_main

    path = tiny_study(variants='["imle"]', steps=10, checkpoint_every=10)
    assert bench_main(["study", str(path), "--variant", "imle", "--no-progress"]) == 0
    tdir = tmp_path / "results" / "tiny" / "imle" / "trial-0000"
    recipe = json.loads((tdir / "config.json").read_text())["recipe"]
    assert recipe["d_role"] == "none" and recipe["g_step"] == "imle_step" and recipe["loss"] is None
    evals = [r for r in records.read_jsonl(tdir / "metrics.jsonl") if r["kind"] == "eval"]
    assert [r["step"] for r in evals] == [10] and math.isfinite(evals[0]["fid_lenet_digits5k_1k_test"])
