"""The report's faster paths (issue 18, point 5) give the same report: importance computed on a
study that holds the trials as they are equals Optuna's own add_trials path, the bootstrap's
16-bit radix sort and shared weights equal the plain sort, and a whole report written with the
straightforward implementations put back is the same, file for file."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import numpy as np
import optuna
import pandas as pd
import pytest

from bench import report
from bench.report import sensitivity, stats, synthetic
from bench.report.build import write


def importance_via_add_trials(best: pd.DataFrame, evaluator: str = "ped_anova", seed: int = 0) -> pd.DataFrame:
    """The straightforward path: create_trial (validated) and Study.add_trials (deep copies)."""
    from optuna.distributions import json_to_distribution
    from optuna.trial import TrialState, create_trial

    ev = sensitivity._evaluator(evaluator, seed)
    rows = []
    for (dataset, variant), g in best.groupby(["dataset", "variant"], sort=False):
        dists = {k: json_to_distribution(d) for k, d in best.attrs["distributions"].get(variant, {}).items()}
        dists = {k: d for k, d in dists.items() if not d.single() and f"hp_{k}" in g}
        ok = g[np.isfinite(g["score"].to_numpy(float))]
        base = {"dataset": dataset, "variant": variant, "evaluator": evaluator, "trials": len(ok)}
        cols = {k: ok[f"hp_{k}"].map(sensitivity._native).tolist() for k in dists}
        dists = {k: sensitivity._covering(d, cols[k]) for k, d in dists.items()}
        trials = [create_trial(state=TrialState.COMPLETE, value=s, params={k: cols[k][i] for k in dists}, distributions=dists)
                  for i, s in enumerate(ok["score"].tolist())]
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="minimize")
        study.add_trials(trials)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            imp = optuna.importance.get_param_importances(study, evaluator=ev, normalize=True)
        rows += [{**base, "param": k, "importance": float(v), "note": ""} for k, v in imp.items()]
    return pd.DataFrame(rows, columns=["dataset", "variant", "param", "importance", "evaluator", "trials", "note"])


def bootstrap_plain(values, ks, resamples: int = 2000, seed=0, replace: bool = False, chunk_cells: int = 4_000_000) -> np.ndarray:
    """The straightforward bootstrap: int64 draws sorted by numpy's default sort, weights per chunk."""
    v = np.sort(np.asarray(list(values), dtype=float))
    ks = np.asarray(list(ks), dtype=int)
    rng = np.random.default_rng(seed)
    n = len(v)
    out = np.empty((resamples, len(ks)))
    step = max(1, chunk_cells // n)
    for start in range(0, resamples, step):
        b = min(step, resamples - start)
        idx = np.sort(rng.integers(0, n, size=(b, n)), axis=1)
        rows = v[idx]
        inf = np.isinf(rows)
        w = stats.min_weights(n, ks, replace)
        e = np.where(inf, 0.0, rows) @ w
        m = inf.sum(axis=1)[:, None]
        out[start:start + b] = np.where((m > 0) if replace else (ks[None, :] <= m), np.inf, e)
    return out


@pytest.fixture(scope="module")
def frame():
    return report.tidy.frame_from_export(synthetic.synthetic_export(40, seed=3, checkpoints=3))


@pytest.mark.parametrize("evaluator", ["ped_anova", "mdi"])
def test_importance_equals_optunas_add_trials_path(frame, evaluator):
    best = report.per_trial(frame)
    pd.testing.assert_frame_equal(sensitivity.importance(best, evaluator).sort_values(["variant", "param"], ignore_index=True),
                                  importance_via_add_trials(best, evaluator).sort_values(["variant", "param"], ignore_index=True))


@pytest.mark.parametrize("n, n_inf, chunk", [(7, 0, 4_000_000), (300, 25, 4_000_000), (300, 0, 1000), (40_000, 3, 4_000_000)])
def test_bootstrap_equals_the_plain_sort(n, n_inf, chunk):
    rng = np.random.default_rng(n)
    v = np.concatenate([rng.normal(size=n - n_inf), np.full(n_inf, np.inf)])
    ks = stats.budget_grid(n)
    resamples = 50 if n > 10_000 else 300
    fast = stats.bootstrap_expected_min(v, ks, resamples, seed=(1, 2), chunk_cells=chunk)
    np.testing.assert_array_equal(fast, bootstrap_plain(v, ks, resamples, seed=(1, 2), chunk_cells=chunk))


def test_a_report_is_the_same_file_for_file_with_the_plain_paths(frame, tmp_path, monkeypatch):
    matplotlib.use("Agg", force=True)
    monkeypatch.setitem(matplotlib.rcParams, "svg.hashsalt", "same")  # SVG element ids are random otherwise
    write(report.build(frame, resamples=200), tmp_path / "fast", notebook=False)
    monkeypatch.setattr(sensitivity, "importance", importance_via_add_trials)
    monkeypatch.setattr(stats, "bootstrap_expected_min", bootstrap_plain)
    write(report.build(frame, resamples=200), tmp_path / "plain", notebook=False)
    files = sorted(p.relative_to(tmp_path / "fast") for p in (tmp_path / "fast").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "plain") for p in (tmp_path / "plain").rglob("*") if p.is_file())
    assert {"importance.csv", "budget.csv", "comparisons.csv", "report.md", "report.html"} <= {str(f) for f in files}
    differ = [str(f) for f in files if (tmp_path / "fast" / f).read_bytes() != (tmp_path / "plain" / f).read_bytes()]
    assert differ == []
