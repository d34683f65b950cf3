"""bench.report without training: the budget statistics against brute force and known answers, the
storage export against Optuna's own API, the tidy frame's states and scores, and the written report."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from bench import report, storage
from bench.errors import HarnessError
from bench.report import stats, synthetic
from bench.report.tables import quantiles

from .conftest import run_cli


def _samples(n: int, n_inf: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = np.round(rng.gamma(3, 10, n), 1)  # rounded: ties on purpose
    v[rng.choice(n, n_inf, replace=False)] = np.inf
    return v


@pytest.mark.parametrize("n, n_inf", [(1, 0), (1, 1), (2, 0), (4, 1), (6, 2), (7, 0), (8, 3), (9, 9)])
def test_expected_min_equals_the_mean_over_all_subsets(n, n_inf):
    v = _samples(n, n_inf, seed=n * 10 + n_inf)
    exact = stats.expected_min(v)
    for k in range(1, n + 1):
        minima = np.array([min(c) for c in itertools.combinations(v, k)])
        want = np.inf if np.isinf(minima).any() else minima.mean()
        assert exact[k - 1] == pytest.approx(want, rel=1e-12), k
        median = stats.median_min(v, [k])[0]
        assert median == np.sort(minima)[math.ceil(len(minima) / 2) - 1]  # the lower median


@pytest.mark.parametrize("n, n_inf", [(3, 0), (4, 1), (5, 0)])
def test_expected_min_with_replacement_equals_the_mean_over_all_tuples(n, n_inf):
    v = _samples(n, n_inf, seed=n)
    exact = stats.expected_min(v, replace=True)
    for k in range(1, n + 1):
        minima = np.array([min(c) for c in itertools.product(v, repeat=k)])
        want = np.inf if np.isinf(minima).any() else minima.mean()
        assert exact[k - 1] == pytest.approx(want, rel=1e-12)


def test_expected_min_stays_finite_and_monotone_for_thousands_of_runs():
    v = _samples(3000, 0, seed=1)
    e = stats.expected_min(v, stats.budget_grid(3000))
    assert np.isfinite(e).all() and np.all(np.diff(e) <= 1e-9)
    assert e[0] == pytest.approx(v.mean()) and e[-1] == pytest.approx(v.min())


@pytest.mark.parametrize("n, n_inf, seed", [(12, 0, 0), (30, 3, 1), (60, 0, 2), (25, 5, 3)])
def test_bootstrap_band_contains_the_exact_value(n, n_inf, seed):
    v = _samples(n, n_inf, seed)
    ks = stats.budget_grid(n)
    exact = stats.expected_min(v, ks)
    lo, hi = stats.band(stats.bootstrap_expected_min(v, ks, resamples=2000, seed=seed))
    assert np.all(lo <= exact) and np.all(exact <= hi)
    assert np.all(lo < hi) or n_inf  # a real band, not a point


def test_bootstrap_is_seeded():
    v = _samples(20, 2, 0)
    a, b = (stats.bootstrap_expected_min(v, [1, 5], 300, seed=7) for _ in range(2))
    assert np.array_equal(a, b) and not np.array_equal(a, stats.bootstrap_expected_min(v, [1, 5], 300, seed=8))


def test_holm_on_a_known_example():
    # sorted p: .005 .01 .03 .04 -> x4, x3, x2, x1 = .02 .03 .06 .04 -> running max .02 .03 .06 .06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.2, 0.6]) == pytest.approx([0.4, 0.6])
    out = stats.holm([0.5, np.nan, 0.01])
    assert out[0] == pytest.approx(0.5) and np.isnan(out[1]) and out[2] == pytest.approx(0.02)
    assert stats.holm([0.7, 0.9]).max() <= 1.0


def test_scores_with_nan_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        stats.expected_min([1.0, np.nan])


def test_quantiles_rank_diverged_runs_last():
    assert quantiles(np.array([1.0, 2.0, 3.0, np.inf])) == [1.0, 1.75, 2.5, np.inf, np.inf]
    assert quantiles(np.array([np.inf, np.inf]))[0] == np.inf


def test_comparison_gives_a_verdict_only_when_the_interval_excludes_zero():
    rng = np.random.default_rng(0)
    good, bad = rng.normal(10, 1, 40), rng.normal(30, 1, 40)
    same = rng.normal(10, 1, 40)
    sc = {("d", "good"): good, ("d", "bad"): bad, ("d", "same"): same}
    _, reps = stats.budget_curves(sc, resamples=500)
    mw, diffs = stats.compare(sc, reps, metric="fid")
    pair = diffs[(diffs["a"] == "good") & (diffs["b"] == "bad")]
    assert (pair["hi"] < 0).all() and pair["verdict"].str.startswith("With a budget of").all()
    assert "good reaches a lower expected best fid than bad" in pair["verdict"].iloc[0]
    tie = diffs[(diffs["a"] == "good") & (diffs["b"] == "same")]
    assert ((tie["lo_sim"] <= 0) & (tie["hi_sim"] >= 0) == (tie["verdict"] == "")).all()
    row = mw[(mw["a"] == "good") & (mw["b"] == "bad")].iloc[0]
    assert row["p_a_lower"] == 1.0 and row["p_holm"] <= 3 * row["p"] and row["p_holm"] < 1e-6


def _trial(number, state, value, outcome, evals=None, intermediate=None, **ua):
    attrs = {"hparams": {"learning_rate": 1e-4 * (number + 1), "d_batchnorm": True}, "outcome": outcome, **ua}
    if evals is not None:
        attrs["evaluations"] = evals
    return {"number": number, "state": state, "value": value, "params": {"learning_rate": 1e-4 * (number + 1)},
            "distributions": {"learning_rate": synthetic.LR}, "user_attrs": attrs, "intermediate": intermediate or {}}


def _export(trials, variant="wgan"):
    cfg = synthetic.synthetic_export(1)[0]["user_attrs"]["config"]
    return [{"name": f"synthetic:{variant}", "user_attrs": {"config": cfg, "variant": variant}, "trials": trials}]


def test_tidy_frame_states_scores_and_budget():
    m = "fid_lenet_digits5k_1k_test"
    trials = [
        _trial(0, "complete", 5.0, "complete", [{"step": 5, m: 7.0}, {"step": 10, m: 5.0}], best_step=10),
        _trial(1, "complete", 6.0, "diverged", [{"step": 5, m: 6.0}, {"step": 10, m: "inf"}], reason="non-finite <loss>"),
        _trial(2, "complete", math.inf, "diverged", [], reason="non-finite at step 3"),
        _trial(3, "pruned", 9.0, "pruned", None, {5: 9.0}),
        _trial(4, "fail", None, "failed", None, error="RuntimeError: boom"),
        _trial(5, "fail", None, None),  # a dead worker's trial, retried elsewhere
        _trial(6, "running", None, None),
    ]
    frame = report.tidy.frame_from_export(_export(trials))
    assert frame.groupby("trial").size().to_dict() == {0: 2, 1: 2, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}
    best = report.per_trial(frame).set_index("trial")
    assert best["state"].to_dict() == {0: "complete", 1: "diverged", 2: "diverged", 3: "pruned", 4: "failed", 5: "lost", 6: "running"}
    assert best.loc[0, "score"] == 5.0 and best.loc[0, "best_checkpoint"] == 10
    assert best.loc[1, "score"] == 6.0 and best.loc[2, "score"] == np.inf
    assert np.isnan(best.loc[3, "score"]) and best.loc[3, "partial_score"] == 9.0  # pruned: apart (issue 14, point 5)
    assert best.loc[[4, 5, 6], "score"].isna().all()
    assert best["trials_spent"].to_dict() == pytest.approx({0: 1, 1: 2, 2: 3, 3: 4, 4: 5, 5: np.nan, 6: 6}, nan_ok=True)
    assert best.loc[0, "hp_learning_rate"] == 1e-4 and best.loc[4, "reason"] == "RuntimeError: boom"
    assert list(report.scores(report.per_trial(frame))[("mnist", "wgan")]) == [5.0, 6.0, np.inf]
    assert list(report.scores(report.per_trial(frame, include_pruned=True))[("mnist", "wgan")]) == [5.0, 6.0, np.inf, 9.0]
    summary = report.summary_table(report.per_trial(frame)).iloc[0]
    assert (summary["trials"], summary["diverged"], summary["diverged_pct"]) == (6, 2, pytest.approx(100 / 3))
    assert summary["paper_table2"] == "6.7 ± 0.4" and summary[f"{m}_max"] == np.inf and summary["best_trial"] == 0


def test_no_scored_trial_is_a_clear_error():
    frame = report.tidy.frame_from_export(_export([_trial(0, "fail", None, "failed", error="RuntimeError: boom")]))
    with pytest.raises(HarnessError, match=r"no completed trial to report yet \(1 failed\)"):
        report.build(frame)


def test_fast_export_equals_optuna_api(tmp_path):
    exported = synthetic.synthetic_export(40, variants=("ns_gan", "wgan"), seed=3)
    trials = exported[1]["trials"]
    trials[1].update(state="pruned", value=trials[1]["intermediate"][250])
    trials[2].update(state="fail", value=None)
    trials[3].update(state="running", value=None)
    trials[4].update(value=math.inf)
    url = f"sqlite:///{tmp_path}/s.db"
    synthetic.write_sqlite(url, exported)
    synthetic.check_sqlite(url, exported, every=1)
    fast = storage.export_studies(url, fast=True)
    slow = storage.export_studies(url, fast=False)
    assert fast == slow == [{**s, "user_attrs": dict(s["user_attrs"])} for s in exported]
    states = {t["state"] for s in fast for t in s["trials"]}
    assert states == {"complete", "pruned", "fail", "running"}


def _seed_reruns(exported, n=5):
    """The same study's `bench seeds` reruns: Optuna studies <study>:<variant>:seeds, kind seed_reruns."""
    reruns = synthetic.synthetic_export(n, variants=tuple(s["user_attrs"]["variant"] for s in exported), seed=9)
    for s in reruns:
        s["name"] += ":seeds"
        s["user_attrs"]["kind"] = "seed_reruns"
    return reruns


def test_search_and_seed_reruns_load_apart(tmp_path):
    exported = synthetic.synthetic_export(6, variants=("ns_gan", "wgan"), seed=2)
    folder = tmp_path / "synthetic"
    folder.mkdir()
    synthetic.write_sqlite(f"sqlite:///{folder}/optuna.db", exported + _seed_reruns(exported))
    frames = report.load_phases(folder)
    assert set(frames) == {"search", "seeds"}
    assert frames["search"].groupby("variant")["trial"].nunique().to_dict() == {"ns_gan": 6, "wgan": 6}
    assert frames["seeds"].groupby("variant")["trial"].nunique().to_dict() == {"ns_gan": 5, "wgan": 5}
    assert report.load(folder, phase="seeds").attrs["phase"] == "seeds"
    table = report.seeds_table(report.per_trial(frames["seeds"])).set_index("variant")
    assert table.loc["ns_gan", "reruns"] == 5 and table.loc["ns_gan", "paper_table2"] == "6.8 ± 0.5"


def test_written_report_escapes_study_strings(tmp_path):
    exported = synthetic.synthetic_export(30, variants=("ns_gan", "wgan"), seed=1)
    exported[0]["trials"][3]["user_attrs"].update(outcome="failed", error="<script>alert(1)</script>")
    exported[0]["trials"][3]["state"] = "fail"
    frame = report.tidy.frame_from_export(exported)
    frame.attrs["source"] = "postgresql://u:***@host/<db>"
    seeds = report.tidy.frame_from_export(_seed_reruns(exported), phase="seeds")
    rep = report.build(frame, resamples=200, seeds=seeds)
    paths = report.write(rep, tmp_path / "report", notebook=False)
    html = paths["report.html"].read_text()
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;db&gt;" in html
    md = paths["report.md"].read_text()
    assert "<script>" not in md and "## Seed reruns (the paper's phase 3)" in md and "6.8 ± 0.5" in md
    assert report.load(paths["seeds.parquet"]).equals(seeds)
    for name in ("distribution", "budget", "importance", "learning_rate"):
        assert paths[f"figures/{name}.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_parquet(paths["trials.parquet"])
    assert len(back) == len(frame) and back.attrs["objective"] == frame.attrs["objective"]
    assert report.per_trial(back)["score"].equals(rep.best["score"])
    summary = pd.read_csv(paths["summary.csv"])
    assert list(summary["variant"]) == ["ns_gan", "wgan"] and (summary["trials"] == 30).all()
    budget = pd.read_csv(paths["budget.csv"])
    n = len(report.scores(rep.best)[("mnist", "wgan")])
    assert 25 <= n <= 30 and set(budget["k"][budget["variant"] == "wgan"]) == set(range(1, n + 1))


def test_report_cli_without_a_completed_trial(env, tmp_path):
    exported = _export([_trial(0, "fail", None, "failed", error="RuntimeError: boom")])
    folder = tmp_path / "results" / "synthetic"
    folder.mkdir(parents=True)
    synthetic.write_sqlite(f"sqlite:///{folder}/optuna.db", exported)
    r = run_cli("report", folder, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "no completed trial to report yet (1 failed)" in r.stderr


def test_a_study_that_never_ran_is_a_clear_error(env, tiny_study):
    from bench.config import load_study

    with pytest.raises(HarnessError, match="has no results yet"):
        report.load(load_study(str(tiny_study())))
