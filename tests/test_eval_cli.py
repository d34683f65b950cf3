"""`bench eval` (metrics on saved checkpoints, appended, reproducing the training-time values) and
`bench fid` (two folders, saved statistics, features named) through the real CLI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from bench import data as data_mod
from bench import records
from bench.config import load_study
from bench.errors import ConfigError, HarnessError
from bench.metrics import base, fidelity
from bench.trial import reeval

from .conftest import ROOT, run_cli


def test_bench_eval_appends_new_metrics_and_reproduces_logged_values(env, tiny_study, tmp_path):
    path = tiny_study(trials=1, variants='["ns_gan"]')
    assert run_cli("study", path, "--variant", "ns_gan", env=env).returncode == 0
    log = tmp_path / "results" / "tiny" / "ns_gan" / "trial-0000" / "metrics.jsonl"
    before = log.read_bytes()
    trained = {r["step"]: r["fid_lenet_digits5k_1k_test"] for r in records.read_jsonl(log) if r["kind"] == "eval"}

    r = run_cli("eval", path, "--metrics", "fid_lenet_digits5k_1k_test", "kid_lenet_digits5k_1k_test", env=env)
    assert r.returncode == 0, r.stderr
    assert log.read_bytes().startswith(before)  # appended, never overwritten
    new = [x for x in records.read_jsonl(log) if x.get("source") == "bench eval"]
    # FID was logged during training, so only KID is computed, once per checkpoint.
    assert [x["step"] for x in new] == [5, 10]
    assert all("fid_lenet_digits5k_1k_test" not in x and math.isfinite(x["kid_lenet_digits5k_1k_test"]) for x in new)
    assert all(x["extractors"]["kid_lenet_digits5k_1k_test"]["extractor"] == "lenet-digits5k" for x in new)

    r = run_cli("eval", path, "--variant", "ns_gan", "--again", env=env)  # the study's own metrics, recomputed
    assert r.returncode == 0, r.stderr
    again = [x for x in records.read_jsonl(log) if x.get("source") == "bench eval"][2:]
    assert {x["step"]: x["fid_lenet_digits5k_1k_test"] for x in again} == pytest.approx(trained, rel=1e-9)

    # In-process from here (each CLI start costs seconds): nothing left to do, and a metric of another dataset.
    cfg = load_study(str(path))
    size = log.stat().st_size
    assert reeval.eval_study(cfg, ["ns_gan"], list(cfg.eval.metrics), "cpu", log=lambda _: None) == []
    assert log.stat().st_size == size
    with pytest.raises(ConfigError, match="'triangles_prf_100_test' does not apply to dataset 'digits5k'"):
        reeval.eval_study(cfg, ["ns_gan"], ["triangles_prf_100_test"], "cpu")


def _write_pngs(folder, images: torch.Tensor) -> None:
    folder.mkdir(parents=True)
    for i, x in enumerate(images):
        Image.fromarray((x[0].numpy() * 255).round().astype(np.uint8), mode="L").save(folder / f"{i:04d}.png")


def test_bench_fid_between_folders_and_saved_statistics(env, tmp_path):
    digits = data_mod.load("digits5k", ROOT)  # its file is ordered by class: take every k-th image
    a, b = tmp_path / "a", tmp_path / "b"
    _write_pngs(a, digits.train[::20][:200])
    _write_pngs(b, digits.test[::5][:200])
    r = run_cli("fid", a, b, "--features", "lenet-digits5k", "--save-stats", tmp_path / "a.npz", "--device", "cpu", env=env)
    assert r.returncode == 0, r.stderr
    value = float(r.stdout.split()[1])
    assert "features: lenet-digits5k" in r.stdout and 0 < value < 100

    # The same number in-process, from the tensors the PNGs were written from.
    ctx = base.MetricContext(digits, torch.device("cpu"))
    ext = ctx.extractor("lenet-digits5k")
    fa = base.extract(ext, (digits.train[::20][:200] * 255).round().to(torch.uint8), ctx.device, 100)["features"]
    fb = base.extract(ext, (digits.test[::5][:200] * 255).round().to(torch.uint8), ctx.device, 100)["features"]
    assert value == pytest.approx(fidelity.frechet_distance(fidelity.statistics(fa), fidelity.statistics(fb)), rel=1e-5)

    # Saved statistics stand in for the folder; statistics of other features are refused by name.
    r2 = run_cli("fid", tmp_path / "a.npz", b, "--features", "lenet-digits5k", "--device", "cpu", env=env)
    assert r2.returncode == 0 and float(r2.stdout.split()[1]) == pytest.approx(value, rel=1e-9)
    weights = fidelity.write_random_inception_weights(tmp_path / "w.pth")
    with pytest.raises(HarnessError, match="statistics of lenet-digits5k"):
        reeval.fid_between(tmp_path / "a.npz", b, "inception", "cpu", weights=str(weights))
    with pytest.raises(HarnessError, match="nowhere"):
        reeval.fid_between(a, tmp_path / "nowhere", "lenet-digits5k", "cpu")
