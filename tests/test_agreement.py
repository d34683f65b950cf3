"""Rank agreement across metrics and the device-time budget curves, on hand-made tidy frames."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from bench.report import agreement, devicetime

FID, PRC, KID = "fid_lenet_digits5k_1k_test", "prc_lenet_digits5k_1k_test", "kid_lenet_digits5k_1k_test"


def _frame(rows: list[tuple], metrics=(FID, PRC, KID)) -> pd.DataFrame:
    """rows: (variant, trial, state, step, *metric values)."""
    f = pd.DataFrame([{"study": "s", "dataset": "d", "variant": v, "trial": t, "state": st, "step": step,
                       **dict(zip(metrics, vals))} for v, t, st, step, *vals in rows])
    f.attrs = {"objective": metrics[0], "metrics": list(metrics)}
    return f


# Three variants, two trials each, two checkpoints per trial. Each trial's best per metric (FID and KID
# lower is better, PRC higher): A trials FID 1, 2; B 3, 4; C 5, 6. PRC: A .1 .2, B .3 .4, C .5 .6 (so
# C is best). KID: A 1 2, B 9 9, C 5 5 (A < C < B).
ROWS = []
for v, fids, prcs, kids in (("A", (1, 2), (0.1, 0.2), (1, 2)), ("B", (3, 4), (0.3, 0.4), (9, 9)), ("C", (5, 6), (0.5, 0.6), (5, 5))):
    for t, (f, p, k) in enumerate(zip(fids, prcs, kids)):
        ROWS.append((v, t, "complete", 1, f + 10, p - 0.05, k + 1))  # a worse first checkpoint
        ROWS.append((v, t, "complete", 2, f, p, k))


def test_each_trial_keeps_its_best_checkpoint_per_metric_oriented_lower_is_better():
    tb = agreement.trial_bests(_frame(ROWS), [FID, PRC, KID])
    a0 = tb[(tb["variant"] == "A") & (tb["trial"] == 0)].iloc[0]
    assert (a0[FID], a0[PRC], a0[KID]) == (1, -0.1, 1)
    rows = ROWS + [("D", 0, "diverged", 1, np.nan, np.nan, np.nan), ("D", 1, "failed", 1, 3.0, 0.2, 1.0)]
    tb = agreement.trial_bests(_frame(rows), [FID, PRC])
    d = tb[tb["variant"] == "D"]
    assert len(d) == 1 and np.isinf(d[FID]).all() and np.isinf(d[PRC]).all()  # diverged: +inf; failed: no score


def test_kendall_tau_and_flips_by_hand():
    out = agreement.agreement(_frame(ROWS), resamples=200)
    assert len(out) == 2 * 3  # two summaries x three pairs of metrics
    for how in agreement.SUMMARIES:
        r = out[out["summary"] == how].set_index(["metric_a", "metric_b"])
        # FID: A < B < C; PRC: C < B < A (reversed): tau -1, every pair flips
        assert r.loc[(FID, PRC), "tau"] == pytest.approx(-1) and r.loc[(FID, PRC), "flips"] == "A/B; A/C; B/C"
        # FID vs KID (A < C < B): pairs AB, AC concordant, BC discordant: (2 - 1) / 3
        assert r.loc[(FID, KID), "tau"] == pytest.approx(1 / 3) and r.loc[(FID, KID), "flips"] == "B/C"
        assert r.loc[(PRC, KID), "tau"] == pytest.approx(-1 / 3) and r.loc[(PRC, KID), "flips"] == "A/B; A/C"
    assert (out.loc[out["summary"] == "best-of-k", "k"] == 2).all()
    # the variants never overlap within a metric, so every resample keeps the orders: a point interval
    assert np.allclose(out["lo"], out["tau"]) and np.allclose(out["hi"], out["tau"])
    ranks = agreement.rankings(_frame(ROWS), [FID, PRC, KID])
    assert ranks.set_index(["summary", "metric"]).loc[("median", KID), "order"] == "A, C, B"


def test_the_bootstrap_interval_contains_tau_and_is_seeded():
    rng = np.random.default_rng(0)
    rows = [(v, t, "complete", 1, rng.normal(i, 1), rng.normal(i, 1), rng.normal(-i, 3))
            for i, v in enumerate("ABCD") for t in range(8)]
    a = agreement.agreement(_frame(rows), resamples=300, seed=1)
    assert (a["lo"] <= a["tau"]).all() and (a["tau"] <= a["hi"]).all() and (a["lo"] < a["hi"]).any()
    assert a.equals(agreement.agreement(_frame(rows), resamples=300, seed=1))


def test_nothing_to_agree_on_with_one_metric_or_one_variant():
    assert agreement.agreement(_frame([r[:5] for r in ROWS], metrics=(FID,))).empty
    assert agreement.agreement(_frame([r for r in ROWS if r[0] == "A"])).empty


def _best(rows: list[tuple]) -> pd.DataFrame:
    """rows: (variant, seconds, score)."""
    return pd.DataFrame([{"dataset": "d", "variant": v, "trial": i, "state": "complete", "seconds": s, "score": f}
                         for i, (v, s, f) in enumerate(rows)])


def test_best_within_a_device_time_budget_by_hand():
    # trials (seconds, score): (1, 5), (2, 3), (4, 1). Budget 3 s: orders (6 of them, equally likely):
    # 123 -> trials 1, 2 done (1+2=3): best 3;  132 -> 1 (then 3 needs 5): 5;  213 -> 2, 1: 3;  231 -> 2: 3;
    # 312, 321 -> none done: inf. Budget 7 s: all done in every order: 1.
    sec, sc = np.array([1.0, 2.0, 4.0]), np.array([5.0, 3.0, 1.0])
    r = devicetime.best_within(sec, sc, np.array([3.0, 7.0]), orders=60_000, seed=0)
    assert np.isinf(r["expected_best"][0]) and r["expected_best"][1] == 1.0 and r["median_best"][1] == 1.0
    assert r["median_best"][0] == 3.0  # 3 of 6 orders give 3, one gives 5, two give inf: the lower median
    # with the last trial too costly to finish by 3 s, drop it: orders 12 -> 3, 21 -> 3 (both done at 3 s)
    r = devicetime.best_within(sec[:2], sc[:2], np.array([1.0, 2.0, 3.0]), orders=20_000, seed=0)
    assert np.isinf(r["expected_best"][0])  # in half the orders nothing has finished after 1 s
    assert r["trials_done"][2] == 2.0 and r["expected_best"][2] == 3.0
    # trials done at 2 s: order 12 -> 1 (trial 1), order 21 -> 1 (trial 2): mean 1; best 5 or 3: mean 4
    assert r["trials_done"][1] == 1.0
    r = devicetime.best_within(np.array([1.0, 1.0]), np.array([5.0, 3.0]), np.array([1.0]), orders=40_000, seed=0)
    assert r["expected_best"][0] == pytest.approx(4.0, abs=0.05)


def test_time_curves_compare_a_cheap_and_a_costly_variant_on_one_grid():
    # same scores; the costly variant's trials take 5x longer, so at equal seconds it has fewer trials
    rows = [("cheap", 10.0, f) for f in (9, 7, 5, 3)] + [("costly", 50.0, f) for f in (9, 7, 5, 3)]
    c = devicetime.time_curves(_best(rows), orders=4000, budget_seconds=40.0)
    cheap, costly = (c[c["variant"] == v].set_index("seconds") for v in ("cheap", "costly"))
    assert list(cheap.index) == list(costly.index) and 40.0 in cheap.index
    assert cheap.loc[40.0, "expected_best"] == 3.0 and np.isinf(costly.loc[40.0, "expected_best"])
    last = c.groupby("variant")["expected_best"].last()
    assert last["cheap"] == last["costly"] == 3.0  # with every trial in, both reach their best
    at = devicetime.at_budgets(c, [40.0])
    assert list(at["variant"]) == ["cheap", "costly"] and (at["seconds"] == 40.0).all()
    # the expected best of k trials (equal costs) is the trial-count curve at k = T / cost
    for k, t in itertools.product([1, 2, 3], [10.0]):
        e = devicetime.best_within(np.full(4, t), np.array([9.0, 7, 5, 3]), np.array([k * t]), orders=40_000, seed=k)
        want = np.mean([min(s) for s in itertools.combinations([9.0, 7, 5, 3], k)])
        assert e["expected_best"][0] == pytest.approx(want, abs=0.05)


def test_vectorized_tau_b_equals_scipy_with_ties_and_infinities():
    # agreement._tau is scipy.stats.kendalltau (tau-b) on the same values
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(200, 5)).astype(float)
    y = rng.integers(0, 4, size=(200, 5)).astype(float)
    x[rng.random(x.shape) < 0.1] = np.inf
    ours = agreement.tau_b_rows(x, y)
    for r in range(200):
        want = agreement._tau(x[r], y[r])
        assert (np.isnan(ours[r]) and np.isnan(want)) or ours[r] == pytest.approx(want, abs=1e-12), r


def test_a_written_report_has_the_agreement_and_device_time_sections(tmp_path):
    from bench import report
    from bench.report import synthetic

    exported = synthetic.synthetic_export(12, variants=("ns_gan", "wgan"), seed=1, metrics=(FID, KID))
    for s in exported:
        s["user_attrs"]["config"]["study"]["budget_seconds"] = 20.0
    frame = report.tidy.frame_from_export(exported)
    rep = report.build(frame, resamples=200)
    assert len(rep.agreement) == 2 and (rep.agreement["tau"] == 1).all()  # synthetic KID = 1.1 x FID: one order
    assert rep.settings["budget_seconds"] == 20.0 and 20.0 in set(rep.time_curves["seconds"])
    paths = report.write(rep, tmp_path / "report", notebook=False)
    md = paths["report.md"].read_text()
    assert "## Rank agreement across metrics" in md and "## Expected best score against device time" in md
    assert "budget is 20 device-seconds" in md and "No pair of metrics orders two variants in opposite ways" in md
    assert paths["figures/device_time.png"].read_bytes()[:4] == b"\x89PNG"
    back = pd.read_csv(paths["agreement.csv"])
    assert list(back["metric_a"]) == [FID, FID] and list(back["metric_b"]) == [KID, KID]
    # one metric only: no agreement section, the device-time one stays
    single = report.build(report.tidy.frame_from_export(synthetic.synthetic_export(6, variants=("ns_gan", "wgan"))), resamples=100)
    assert single.agreement is None and single.time_curves is not None
