"""The paper as study files (studies/lucic2018/, PROTOCOL.md) and `bench study --dry-run`: the
plan it prints and the calibration its compute estimate comes from."""

from __future__ import annotations

import pytest

from bench.config import load_study
from bench.metrics import METRICS
from bench.study import plan

# dataset: (D steps at batch 64, epochs) from PROTOCOL.md; triangles takes MNIST's (the paper gives none)
PAPER = {"mnist": (15625, 20), "fashion_mnist": (15625, 20), "cifar10": (78125, 100), "celeba": (101250, 40), "triangles": (15625, 20)}
PAPER_VARIANTS = {"mm_gan", "ns_gan", "lsgan", "wgan", "wgan_gp", "dragan", "began", "vae"}


@pytest.mark.parametrize("phase, trials, space", [("", 100, "wide"), ("_narrow", 50, "narrow")])
@pytest.mark.parametrize("dataset", list(PAPER))
def test_paper_study_files_encode_the_protocol(dataset, phase, trials, space):
    cfg = load_study(f"lucic2018/{dataset}{phase}")
    steps, epochs = PAPER[dataset]
    assert (cfg.study.trials, cfg.study.space, cfg.study.sampler, cfg.study.pruner) == (trials, space, "random", "none")
    assert set(cfg.study.variants) == PAPER_VARIANTS
    assert (cfg.data.dataset, cfg.model.architecture, cfg.model.width, cfg.model.z_dim) == (dataset, "infogan", 1.0, 64)
    assert (cfg.train.batch_size, cfg.train.steps) == (64, steps)
    assert plan.evaluations_per_trial(cfg) == epochs // 5  # a checkpoint every 5 epochs, the last at the end
    assert (cfg.eval.metrics[0], cfg.eval.seed, cfg.eval.generator_mode) == ("fid_inception_10k_test", 42, "eval")
    assert METRICS[cfg.eval.metrics[0]].num_samples == 10_000


def test_dry_run_plan_states_budget_search_and_length_without_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    cfg = load_study("lucic2018/cifar10")
    lines = plan.plan_lines(cfg, ["wgan", "ns_gan"], "postgresql://u:secret@db/x", 16, "cuda:0", 0, [])
    text = "\n".join(lines)
    assert "100 trials per variant, identical for every variant" in text
    assert "sampler random, pruner none, wide space" in text and "78,125 D steps, 20 evaluations" in text
    assert "postgresql://u:***@db/x" in text and "secret" not in text and "16 on cuda:0" in text
    assert not (tmp_path / "results").exists()


def test_calibration_times_steps_and_an_evaluation(tiny_study, env):
    cfg = load_study(str(tiny_study(dataset="ring8", architecture="mlp", width=0.25, steps=10, checkpoint_every=5,
                                    metrics='["swd_ring8_10k_test"]')))
    cal = plan.calibrate(cfg, "ns_gan", "cpu", steps=4)
    assert cal.step_s > 0 and cal.eval_s > 0 and cal.setup_s >= 0
    assert cal.trial_s(cfg) == pytest.approx(cal.setup_s + 10 * cal.step_s + 2 * cal.eval_s)
    lines = plan.plan_lines(cfg, ["ns_gan"], "sqlite:///x.db", 2, "cpu", 4, [])
    assert any(line.startswith("estimate  ns_gan:") and "per trial" in line for line in lines)
    assert any(line.startswith("total ") for line in lines)
