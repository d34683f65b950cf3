"""The real CLI on a tiny budget: records, resume, the paper default as trial 0, summary, exit codes."""

from __future__ import annotations

import json
import math
import sqlite3

import pandas as pd
import pytest

from bench import records

from .conftest import run_cli


def test_bench_list_and_help(env):
    r = run_cli("list", env=env)
    assert r.returncode == 0, r.stderr
    for word in ("variants:", "mm_gan", "ns_gan", "wgan", "wgan_gp", "digits5k", "infogan", "fid_lenet_digits5k_1k_test", "quick"):
        assert word in r.stdout
    for cmd in ([], ["study"], ["report"], ["list"]):
        h = run_cli(*cmd, "--help", env=env)
        assert h.returncode == 0 and "usage: bench" in h.stdout


def test_one_trial_study_leaves_records_and_resumes(env, tiny_study, tmp_path):
    path = tiny_study(trials=1)
    r = run_cli("study", path, "--variant", "wgan", env=env)
    assert r.returncode == 0, r.stderr
    assert "fid_lenet_digits5k_1k_test_min" in r.stdout and "summary:" in r.stdout
    sdir = tmp_path / "results" / "tiny"
    tdir = sdir / "wgan" / "trial-0000"
    cfg = json.loads((tdir / "config.json").read_text())
    assert cfg["paper_default"] is True
    assert cfg["hparams"] == {"learning_rate": 5e-5, "beta1": 0.5, "disc_iters": 5, "d_batchnorm": True, "clip": 0.01}
    assert cfg["environment"]["device"] == "cpu"
    log = list(records.read_jsonl(tdir / "metrics.jsonl"))
    evals = [x for x in log if x["kind"] == "eval"]
    assert [e["step"] for e in evals] == [5, 10]
    assert all(math.isfinite(e["fid_lenet_digits5k_1k_test"]) and e["fid_lenet_digits5k_1k_test"] > 0 for e in evals)
    assert any(x["kind"] == "train" for x in log)
    assert (tdir / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tdir / "checkpoints").iterdir()) == ["g-0000005.pt", "g-0000010.pt"]
    summary = pd.read_csv(sdir / "summary.csv")
    assert summary.loc[0, "variant"] == "wgan" and summary.loc[0, "trials"] == 1
    assert summary.loc[0, "fid_lenet_digits5k_1k_test_min"] == pytest.approx(min(e["fid_lenet_digits5k_1k_test"] for e in evals))

    # Same command again: the budget is spent, nothing reruns.
    before = (tdir / "metrics.jsonl").read_bytes()
    r2 = run_cli("study", path, "--variant", "wgan", env=env)
    assert r2.returncode == 0, r2.stderr
    assert "trial 1" not in r2.stdout and (tdir / "metrics.jsonl").read_bytes() == before

    # A larger budget resumes: exactly one more trial, numbered 1, drawn from the search space.
    r3 = run_cli("study", path, "--variant", "wgan", "--trials", "2", env=env)
    assert r3.returncode == 0, r3.stderr
    assert "trial 1:" in r3.stdout and "trial 0:" not in r3.stdout
    cfg1 = json.loads((sdir / "wgan" / "trial-0001" / "config.json").read_text())
    assert cfg1["paper_default"] is False and cfg1["hparams"]["beta1"] == 0.5 and 1e-4 <= cfg1["hparams"]["learning_rate"] <= 1e-3
    with sqlite3.connect(sdir / "optuna.db") as db:
        states = db.execute("select number, state from trials order by number").fetchall()
    assert states == [(0, "COMPLETE"), (1, "COMPLETE")]


def test_incompatible_study_in_storage_is_refused(env, tiny_study):
    path = tiny_study(trials=1)
    assert run_cli("study", path, "--variant", "ns_gan", env=env).returncode == 0
    db = path.parent / "results" / "tiny" / "optuna.db"
    before = db.read_bytes()
    path.write_text(path.read_text().replace("steps = 10", "steps = 20"))
    r = run_cli("study", path, "--variant", "ns_gan", env=env)
    assert r.returncode == 2 and "different configuration" in r.stderr and "Traceback" not in r.stderr
    assert db.read_bytes() == before


@pytest.mark.parametrize("args, code, words", [
    (["study", "nope", "--variant", "wgan"], 2, ["nope", "quick"]),
    (["study", "quick", "--variant", "stylegan"], 2, ["--variant", "'stylegan'", "wgan_gp"]),
    (["study", "quick", "--variant", "wgan", "--trials", "0"], 2, ["--trials"]),
])
def test_cli_errors_are_one_line(env, args, code, words):
    r = run_cli(*args, env=env)
    assert r.returncode == code
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    for w in words:
        assert w in r.stderr


def test_seeded_random_sampler_is_worker_and_resume_independent(tmp_path):
    import optuna

    from bench.search.samplers import TrialSeededRandomSampler

    def draws(n_first: int) -> list[float]:
        storage = f"sqlite:///{tmp_path}/s{n_first}.db"
        study = optuna.create_study(storage=storage, sampler=TrialSeededRandomSampler(7))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=n_first)
        study = optuna.load_study(study_name=study.study_name, storage=storage, sampler=TrialSeededRandomSampler(7))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4 - n_first)
        return [t.params["x"] for t in study.trials]

    assert draws(1) == draws(3)
    assert len(set(draws(2))) == 4
