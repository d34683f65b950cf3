"""Honest comparisons (issue 14, point 3): no verdict below the minimum number of trials per
variant, bootstrap intervals simultaneous over every pair x budget, and one set of conclusion lines
that `bench report` prints and report.md shows."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from bench import report
from bench.report import stats, synthetic

from .conftest import run_cli


def test_minimum_n_is_where_an_exact_mann_whitney_test_can_first_reach_5_percent():
    smallest = {}
    for n in range(2, 7):
        x, y = np.arange(n, dtype=float), np.arange(n, dtype=float) + 100  # every trial of x beats every one of y
        smallest[n] = mannwhitneyu(x, y, alternative="two-sided", method="exact").pvalue
        assert smallest[n] == pytest.approx(2 / math.comb(2 * n, n), rel=1e-12)
    assert smallest[3] == pytest.approx(0.1) and smallest[4] == pytest.approx(0.02857, abs=1e-5)
    assert stats.MIN_N == stats.min_n(0.95) == min(n for n, p in smallest.items() if p < 0.05) == 4
    assert stats.min_n(0.99) == 5  # 2 / C(10, 5) = 0.0079 is the first below 0.01


def _compare(sc, resamples=400):
    _, reps = stats.budget_curves(sc, resamples=resamples)
    return stats.compare(sc, reps, metric="fid")


def test_no_verdict_below_the_minimum_even_where_the_bootstrap_interval_excludes_zero():
    sc = {("d", "good"): np.array([1.0, 2.0, 3.0]), ("d", "bad"): np.array([50.0, 51.0, 52.0])}
    mw, diffs = _compare(sc)
    row = diffs.iloc[0]
    assert row["hi"] < 0  # the pointwise interval alone would have printed a verdict
    assert row["verdict"] == "" and row["status"] == "withheld: n below 4 (good 3, bad 3)" and row["family"] == 0
    assert mw.iloc[0]["p"] == pytest.approx(0.1)  # the best a 3 vs 3 exact test can do
    lines = stats.conclusions(sc, diffs)
    assert len(lines) == 1 and lines[0].startswith("no verdict on pairs with good (n = 3), bad (n = 3): a variant needs at least 4")


def test_intervals_are_simultaneous_over_every_pair_and_budget():
    rng = np.random.default_rng(0)
    sc = {("d", v): rng.normal(mu, 1, 12) for v, mu in (("a", 10), ("b", 14), ("c", 10.2))}
    _, reps = stats.budget_curves(sc, resamples=1000)
    _, diffs = stats.compare(sc, reps, metric="fid")
    m = 3 * len(stats.comparison_budgets(12))  # 3 pairs x budgets 1, 5, 10
    assert (diffs["family"] == m).all() and m == 9
    for _, r in diffs.iterrows():  # recomputed from the replicates, independently of stats.band
        (ka, ra), (kb, rb) = reps[("d", r["a"])], reps[("d", r["b"])]
        d = np.sort(ra[:, list(ka).index(r["k"])] - rb[:, list(kb).index(r["k"])])
        tail = 0.05 / m / 2
        assert r["lo_sim"] == np.quantile(d, tail, method="lower") and r["hi_sim"] == np.quantile(d, 1 - tail, method="higher")
        assert r["lo_sim"] <= r["lo"] and r["hi"] <= r["hi_sim"]
        assert bool(r["verdict"]) == (r["lo_sim"] > 0 or r["hi_sim"] < 0)
    ab = diffs[(diffs["a"] == "a") & (diffs["b"] == "b")]
    assert ab["verdict"].str.contains("a reaches a lower expected best fid than b").all()
    assert "(n = 12 and 12 trials); simultaneous 95% bootstrap interval over 9 comparisons" in ab["verdict"].iloc[0]


def test_a_pointwise_exclusion_of_zero_is_no_verdict_once_the_family_is_corrected():
    # Hand-made replicates: 2% of the differences below 0. The 95% pointwise interval excludes 0;
    # the simultaneous one over 3 budgets (tails of 0.83%) does not.
    n, resamples = 10, 1000
    sc = {("d", "a"): np.arange(n, dtype=float), ("d", "b"): np.arange(n, dtype=float) + 0.5}
    ks = np.arange(1, n + 1)
    d = np.where(np.arange(resamples) < 20, -1.0, 1.0)
    reps = {("d", "a"): (ks, np.tile(d[:, None], (1, n))), ("d", "b"): (ks, np.zeros((resamples, n)))}
    _, diffs = stats.compare(sc, reps, metric="fid")
    assert list(diffs["k"]) == [1, 5, 10] and (diffs["family"] == 3).all()
    assert (diffs["lo"] > 0).all() and (diffs["lo_sim"] < 0).all()
    assert (diffs["verdict"] == "").all() and (diffs["status"] == "interval includes 0").all()
    assert stats.conclusions(sc, diffs) == [
        "no verdict among a, b: every simultaneous 95% bootstrap interval of a difference of expected best-of-k "
        "(3 comparisons, Bonferroni) includes 0, so these trials do not tell them apart at any budget compared."]


def _bullets(md: str, heading: str) -> list[str]:
    part = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line[2:] for line in part.splitlines() if line.startswith("- ")]


@pytest.mark.parametrize("variants, trials", [(("ns_gan",), 6), (("ns_gan", "wgan"), 3)])
def test_cli_and_report_say_the_same(env, tmp_path, variants, trials):
    folder = tmp_path / "results" / "synthetic"
    folder.mkdir(parents=True)
    exported = synthetic.synthetic_export(trials, variants=variants, seed=5)
    for s in exported:  # no failed or pruned trial: n is the budget
        for t in s["trials"]:
            t["user_attrs"]["outcome"] = "complete"
    synthetic.write_sqlite(f"sqlite:///{folder}/optuna.db", exported)
    r = run_cli("report", folder, "--brief", "--no-notebook", "--resamples", "200", env=env)
    assert r.returncode == 0, r.stderr
    printed = [line[2:] for line in r.stdout.splitlines() if line.startswith("- ")]
    md = (folder / "report" / "report.md").read_text()
    assert printed == _bullets(md, "Comparisons") and len(printed) == 1
    if len(variants) == 1:
        assert printed == [f"one variant only (ns_gan, n = {trials}): nothing to compare."]
    else:
        assert printed[0].startswith("no verdict on pairs with ns_gan (n = 3), wgan (n = 3)")
        assert "A verdict needs at least 4 scored trials" in md and "0.1 at 3 vs 3 and 0.029 at 4 vs 4" in md
    assert report.load(folder / "report" / "trials.parquet").attrs["objective"] == "fid_lenet_digits5k_1k_test"
