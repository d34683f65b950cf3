"""Pruned trials apart (issue 14, point 5): a pruned trial's best score comes from partial training,
so the distributions, budget curves and tests use the trials run to full length; pruned trials are
counted and shown apart, unless the report is asked to count them (--include-pruned)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import report
from bench.errors import HarnessError
from bench.report import stats, synthetic

from .conftest import run_cli


def _study(n=12):
    """Two variants of n trials with known scores: trials 1-3 of each pruned at step 250 with a very
    good partial score (0.5), the others complete with best score 10 + trial (+ 20 for wgan)."""
    exported = synthetic.synthetic_export(n, variants=("ns_gan", "wgan"), seed=4)
    m = exported[0]["user_attrs"]["config"]["eval"]["metrics"][0]
    for s in exported:
        shift = 20 if s["user_attrs"]["variant"] == "wgan" else 0
        for t in s["trials"]:
            v = 10.0 + t["number"] + shift
            ua = {k: x for k, x in t["user_attrs"].items() if k not in ("evaluations", "steps", "best_step", "reason", "error")}
            if t["number"] in (1, 2, 3):
                t.update(state="pruned", value=0.5, intermediate={250: 0.5}, user_attrs={**ua, "outcome": "pruned"})
            else:
                t.update(state="complete", value=v, intermediate={250: v + 1, 500: v},
                         user_attrs={**ua, "outcome": "complete", "steps": 500, "best_step": 500,
                                     "evaluations": [{"step": 250, m: v + 1}, {"step": 500, m: v}]})
    return exported


def test_pruned_trials_are_counted_apart_and_left_out_of_scores_and_tests(tmp_path):
    frame = report.tidy.frame_from_export(_study())
    rep = report.build(frame, resamples=200)
    full = {v: sorted(t["value"] for t in s["trials"] if t["state"] == "complete")
            for s in _study() for v in [s["user_attrs"]["variant"]]}
    for (dataset, variant), v in report.scores(rep.best).items():
        assert sorted(v) == full[variant] and len(v) == 9 and 0.5 not in v
    s = rep.summary.set_index("variant")
    assert (s["n"] == 9).all() and (s["pruned"] == 3).all() and (s["trials"] == 12).all()
    m = frame.attrs["objective"]
    assert s.loc["wgan", f"{m}_min"] == min(full["wgan"])  # not the pruned 0.5
    assert (rep.curves.groupby("variant")["n"].first() == 9).all()
    assert (rep.mann_whitney[["n_a", "n_b"]] == 9).all().all() and (rep.differences["n_a"] == 9).all()
    p = rep.pruned.set_index("variant")
    assert (p["pruned"] == 3).all() and (p["partial_median"] == 0.5).all() and (p["last_step_median"] == 250).all()
    assert not p["counted"].any()

    paths = report.write(rep, tmp_path / "report", notebook=False)
    md = paths["report.md"].read_text()
    section = md.split("## Pruned trials (apart)\n", 1)[1].split("\n## ", 1)[0]
    assert "6 trial(s) were stopped early by the pruner" in section and "left out of the distributions" in section
    assert "| mnist | ns_gan | 3 | 12 | 250 | 250-250 | 0.5 | 0.5 |" in section
    assert pd.read_csv(paths["pruned.csv"])["pruned"].tolist() == [3, 3]
    back = report.load(paths["trials.parquet"])  # the notebook rebuilds the same analysis from it
    assert report.per_trial(back)["score"].equals(rep.best["score"])


def test_include_pruned_counts_them_as_scores():
    frame = report.tidy.frame_from_export(_study())
    rep = report.build(frame, resamples=200, include_pruned=True)
    assert (rep.summary["n"] == 12).all() and (rep.summary[f"{frame.attrs['objective']}_min"] == 0.5).all()
    assert all(len(v) == 12 and 0.5 in v for v in report.scores(rep.best).values())
    assert rep.pruned["counted"].all() and rep.settings["include_pruned"]
    assert "include_pruned" not in frame.attrs  # the caller's frame is left as it was


def test_report_cli_include_pruned(env, tmp_path):
    folder = tmp_path / "results" / "synthetic"
    folder.mkdir(parents=True)
    synthetic.write_sqlite(f"sqlite:///{folder}/optuna.db", _study(5))
    r = run_cli("report", folder, "--no-notebook", "--resamples", "100", env=env)
    assert r.returncode == 0, r.stderr
    # 2 full-length trials per variant: below the minimum, so no verdict; the summary counts them apart
    assert f"no verdict on pairs with ns_gan (n = 2), wgan (n = 2): a variant needs at least {stats.MIN_N}" in r.stdout
    r = run_cli("report", folder, "--no-notebook", "--resamples", "100", "--include-pruned", "--out", tmp_path / "all", env=env)
    assert r.returncode == 0, r.stderr
    assert "no verdict on pairs with" not in r.stdout  # 5 per variant with the pruned ones
    assert "asked to count them (--include-pruned)" in (tmp_path / "all" / "report.md").read_text()
    summary = pd.read_csv(tmp_path / "all" / "summary.csv")
    assert summary["n"].tolist() == [5, 5] and np.all(summary["pruned"] == 3)


def test_a_study_whose_every_trial_was_pruned_says_how_to_count_them():
    exported = _study(4)
    for s in exported:
        for t in s["trials"]:
            t.update(state="pruned", value=0.5, intermediate={250: 0.5})
            t["user_attrs"] = {k: v for k, v in t["user_attrs"].items() if k not in ("evaluations", "steps", "best_step")}
            t["user_attrs"]["outcome"] = "pruned"
    frame = report.tidy.frame_from_export(exported)
    with pytest.raises(HarnessError, match=r"^no completed trial to report yet \(8 pruned\); pruned trials are left out .*--include-pruned"):
        report.build(frame, resamples=50)
    assert len(report.build(frame, resamples=50, include_pruned=True).best) == 8
