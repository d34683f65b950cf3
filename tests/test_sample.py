"""`bench sample` (issue 19, point 4): N files from a trial's scored checkpoint, equal to what G
(built as the variant built it, loaded with the EMA copy the trial scored) makes of the z."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from bench import records
from bench.cli import main
from bench.config import load_study
from bench.gan.variants import VARIANTS
from bench.study.probe import generator
from bench.trial.train import fixed_z, generate

from .conftest import tiny_study_text


@pytest.fixture
def trained(tmp_path, monkeypatch, shared_cache):
    """A tiny study of one trial with a generator EMA ([train] g_ema), trained through the CLI."""
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCH_CACHE", str(shared_cache))
    monkeypatch.delenv("BENCH_STORAGE", raising=False)
    path = tmp_path / "samp.toml"
    path.write_text(tiny_study_text(name="samp", variants='["vae"]').replace("[train]\n", "[train]\ng_ema = 0.9\n"))
    assert main(["study", str(path), "--variant", "vae", "--no-progress"]) == 0
    return path


def _expected(cfg, weights, n, seed):
    G = generator(cfg, "vae", (1, 28, 28), torch.device("cpu"))
    G.load_state_dict(records.load_weights(weights))
    with torch.no_grad():
        x = generate(G, VARIANTS["vae"].latent(fixed_z(n, cfg.model.z_dim, seed, torch.device("cpu"))), cfg.eval.batch_size,
                     cfg.eval.generator_mode)
    return torch.round(x.clamp(0, 1) * 255).to(torch.uint8).numpy()[:, 0]  # (N, H, W)


def test_sample_writes_n_pngs_equal_to_the_scored_gs_outputs(trained, tmp_path, capsys):
    cfg = load_study(str(trained))
    out = tmp_path / "out"
    assert main(["sample", str(trained), "--variant", "vae", "--n", "7", "--out", str(out), "--device", "cpu"]) == 0
    assert f"samples: {out}/  (7 files)" in capsys.readouterr().out
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"{i:05d}.png" for i in range(7)]
    got = np.stack([np.asarray(Image.open(f)) for f in files])
    tdir = records.trial_dir("samp", "vae", 0)
    best = [r for r in records.read_jsonl(tdir / "metrics.jsonl") if r["kind"] == "eval"]
    step = min(best, key=lambda r: (r[cfg.eval.metrics[0]], r["step"]))["step"]
    ema = records.ema_checkpoint_path(tdir, step)
    assert np.array_equal(got, _expected(cfg, ema, 7, cfg.eval.seed))  # the EMA copy, the vae's prior, the fixed z
    assert not np.array_equal(got, _expected(cfg, records.checkpoint_path(tdir, step), 7, cfg.eval.seed))  # not raw G
    assert json.loads((tdir / "config.json").read_text())["config"]["train"]["g_ema"] == 0.9

    # Another seed and step: other z, the same rule.
    out2 = tmp_path / "out2"
    assert main(["sample", str(trained), "--variant", "vae", "--n", "3", "--seed", "5", "--step", "5", "--out", str(out2)]) == 0
    got2 = np.stack([np.asarray(Image.open(f)) for f in sorted(out2.iterdir())])
    assert np.array_equal(got2, _expected(cfg, records.ema_checkpoint_path(tdir, 5), 3, 5))


def test_sample_refuses_a_used_folder_and_an_unsaved_step(trained, tmp_path, capsys):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x.png").write_bytes(b"")
    assert main(["sample", str(trained), "--variant", "vae", "--n", "2", "--out", str(tmp_path / "used")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["sample", str(trained), "--variant", "vae", "--n", "2", "--step", "7", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--step 7" in err and "saved steps: 5, 10" in err and not (tmp_path / "o").exists()


def test_sample_of_2d_points_writes_one_table(tmp_path, monkeypatch, shared_cache):
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCH_CACHE", str(shared_cache))
    monkeypatch.delenv("BENCH_STORAGE", raising=False)
    path = tmp_path / "ring.toml"
    path.write_text(tiny_study_text(name="ring", variants='["ns_gan"]', dataset="ring8", architecture="mlp", width=0.25,
                                    steps=10, checkpoint_every=10, metrics='["swd_ring8_10k_test"]'))
    assert main(["study", str(path), "--variant", "ns_gan", "--no-progress"]) == 0
    out = tmp_path / "pts"
    assert main(["sample", str(tmp_path / "results" / "ring"), "--variant", "ns_gan", "--n", "50", "--out", str(out)]) == 0
    assert sorted(f.name for f in out.iterdir()) == ["points.csv", "points.npy"]
    cfg = load_study(str(path))
    G = generator(cfg, "ns_gan", (2,), torch.device("cpu"))
    G.load_state_dict(records.load_weights(records.checkpoint_path(records.trial_dir("ring", "ns_gan", 0), 10)))
    with torch.no_grad():
        want = generate(G, fixed_z(50, cfg.model.z_dim, cfg.eval.seed, torch.device("cpu")), cfg.eval.batch_size, cfg.eval.generator_mode)
    points = np.load(out / "points.npy")
    assert points.shape == (50, 2) and np.array_equal(points, want.numpy().astype(np.float32))
    table = np.loadtxt(out / "points.csv", delimiter=",", skiprows=1, dtype=np.float32)
    assert np.array_equal(table, points)
