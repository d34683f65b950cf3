"""`bench probe` and the report's issue-17 sections on a real tiny two-variant study with seed reruns:
the sampling spread reproduces the logged value at the study's own evaluation seed, the memorization
check separates copied training images from held-out ones, and the report shows rank agreement,
device time, the variance split and the memorization check."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from bench import data as data_mod
from bench.metrics import neighbours

from .conftest import ROOT, run_cli


def test_memorization_separates_copied_training_digits_from_test_digits():
    digits = data_mod.load("digits5k", ROOT)
    train, test = digits.train[:1000].flatten(1), digits.test[:300].flatten(1)
    copier = train[torch.randperm(1000, generator=torch.Generator().manual_seed(0))[:300]]
    assert neighbours.memorization(copier, train)["share"] == 1.0
    held_out = neighbours.memorization(test, train)["share"]
    assert held_out < 0.8  # real digits that were not in the training set: well below a copier


@pytest.mark.slow
def test_probe_and_report_sections_on_a_tiny_study_with_seed_reruns(env, tiny_study, tmp_path):
    path = tiny_study(trials=1, variants='["ns_gan", "wgan"]',
                      metrics='["fid_lenet_digits5k_1k_test", "kid_lenet_digits5k_1k_test", "dc_lenet_digits5k_1k_test"]')
    for args in (("study", path, "--variant", "all"), ("seeds", path, "--variant", "all", "--seeds", "2"),
                 ("probe", path, "--z-seeds", "3", "--samples", "200")):
        r = run_cli(*args, env=env)
        assert r.returncode == 0, (args, r.stderr)
    assert "memorization in lenet-digits5k" in r.stdout
    probe = tmp_path / "results" / "tiny" / "probe"
    rec = json.loads((probe / "ns_gan.json").read_text())
    assert rec["values"][0] == pytest.approx(rec["logged_value"], rel=1e-9)  # seed 0 is the study's own z
    assert len(set(rec["values"])) == 3 and rec["memorization"]["samples"] == 200
    assert 0 <= rec["memorization"]["share"] <= 1 and (probe / "ns_gan-nearest.png").read_bytes()[:4] == b"\x89PNG"

    r = run_cli("report", path, "--resamples", "200", "--no-notebook", env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "results" / "tiny" / "report"
    md = (out / "report.md").read_text()
    for section in ("## Rank agreement across metrics", "## Expected best score against device time",
                    "## Training-seed against sampling variance", "## Memorization check"):
        assert section in md, section
    assert (out / "figures" / "nearest-wgan.png").is_file() and "figures/nearest-wgan.png" in md
    var = pd.read_csv(out / "variance.csv").set_index("variant")
    assert list(var["reruns"]) == [2, 2] and list(var["z_seeds"]) == [3, 3]
    assert var["sampling_std"].gt(0).all() and set(var["dominates"]) <= {"training seed", "sampling (evaluation z)"}
    agree = pd.read_csv(out / "agreement.csv")
    assert len(agree) == 2 * 3  # two summaries x three pairs of metrics


@pytest.mark.parametrize("variant", ["vae", "ns_gan"])
def test_probe_builds_g_as_the_trials_did(variant):
    """The VAE's decoder has ReLU where the architecture's G has LeakyReLU; the checkpoint's weights
    load into either, so the probe must build the variant's own G (it once built the architecture's)."""
    import tomllib

    from torch import nn

    from bench.config import parse_study
    from bench.gan.variants import VARIANTS
    from bench.study import probe
    from bench.trial import train

    from .conftest import tiny_study_text

    cfg = parse_study(tomllib.loads(tiny_study_text()), "tiny.toml")
    G = probe.generator(cfg, variant, (1, 28, 28), torch.device("cpu"))
    want = train.build_nets(VARIANTS[variant], "infogan", (1, 28, 28), cfg.model.width, cfg.model.z_dim,
                            VARIANTS[variant].defaults, torch.device("cpu")).G
    kinds = lambda net: [type(m).__name__ for m in net.modules() if not list(m.children())]  # noqa: E731
    assert kinds(G) == kinds(want)
    assert any(isinstance(m, nn.ReLU) for m in G.modules()) == (variant == "vae")
