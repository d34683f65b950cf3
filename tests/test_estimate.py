"""The dry run's estimate (issue 18, point 2): calibration leaves the warm-up out and separates D
and G steps (checked with a fake clock against the closed form), it calibrates on a stand-in
where the dataset is missing, and on a partly done study it covers only what is left."""

from __future__ import annotations

import dataclasses

import optuna
import pytest
from optuna.trial import TrialState

from bench import data as data_mod
from bench import records, storage
from bench.benchmarks.estimate import parse_estimate
from bench.config import load_study
from bench.errors import HarnessError
from bench.study import budget as budget_mod
from bench.study import plan
from bench.study.budget import Budget
from bench.study.status import optuna_study_name


def _trial(outcome: str, steps: int = 10, seconds: float = 3.0) -> optuna.trial.FrozenTrial:
    state = {"complete": TrialState.COMPLETE, "diverged": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
             "running": TrialState.RUNNING}.get(outcome, TrialState.FAIL)
    ua = {} if outcome == "running" else {"outcome": outcome, "steps": steps, "seconds": seconds}
    return optuna.trial.create_trial(state=state, value=1.0 if state == TrialState.COMPLETE else None, user_attrs=ua)


@pytest.mark.parametrize("budget, outcomes, expected", [
    # trials left = budget - (finished that count + running); given-back, interrupted and aborted ones do not count
    (Budget(10), ["complete", "failed", "diverged", "pruned"], (6, 4, 0)),
    (Budget(10), ["complete", "running", "over_budget", "interrupted", "aborted"], (8, 1, 1)),
    (Budget(3), ["complete"] * 5, (0, 5, 0)),
    # a steps budget of 100 at 10 planned steps: 3 finished spend 30 (one pruned at 4), 1 running commits 10 -> 66 left, 6 trials
    (Budget(20, steps=100), ["complete", "complete", ("pruned", 4), "running"], (6, 3, 1)),
])
def test_left_is_the_budget_less_what_counts(budget, outcomes, expected):
    trials = [_trial(o) if isinstance(o, str) else _trial(o[0], steps=o[1]) for o in outcomes]
    left = budget_mod.left(trials, budget, planned_steps=10)
    assert (left.trials, left.finished, left.running) == expected
    assert left.seconds == float("inf")


def test_left_seconds_is_the_budget_less_what_was_spent():
    left = budget_mod.left([_trial("complete", seconds=40.0), _trial("failed", seconds=15.0), _trial("over_budget", seconds=99.0)],
                           Budget(10, seconds=100.0), planned_steps=10)
    assert (left.trials, left.seconds) == (8, 45.0)


def test_estimate_on_a_partly_done_study_covers_what_is_left(tiny_study, env, tmp_path, monkeypatch):
    cfg = load_study(str(tiny_study(trials=5, steps=10, checkpoint_every=5)))
    url = records.default_storage_url(cfg.name, tmp_path / "results")
    (tmp_path / "results" / cfg.name).mkdir(parents=True)
    study = optuna.create_study(study_name=optuna_study_name(cfg, "ns_gan"), storage=storage.open_storage(url, heartbeat=False))
    for o in ("complete", "complete", "failed", "over_budget"):
        study.add_trial(_trial(o))
    # a D step 0.3 s, a G update 0.2 s more: 0.5 s per D step at disc_iters 1 (the narrow space's), 0.34 s at 5
    cal = plan.Calibration("ns_gan", "cpu", setup_s=2.0, step_s=0.5, eval_s=3.0, d_step_s=0.3, g_step_s=0.2, disc_iters=(1,))
    monkeypatch.setattr(plan, "calibrate", lambda cfg, v, device, steps: cal)
    trial_s = 2.0 + 10 * 0.5 + 2 * 3.0  # setup + steps x step + evaluations x evaluation = 13 s
    default_wgan = 2.0 + 10 * (0.3 + 0.2 / 5) + 2 * 3.0  # wgan's paper default (trial 0) runs disc_iters 5: 11.4 s
    assert (cal.trial_s(cfg), cal.trial_s_at(cfg, 5)) == pytest.approx((trial_s, default_wgan))

    stored = plan.stored_progress(cfg, url, ["ns_gan", "wgan"])
    assert list(stored) == ["ns_gan"]  # wgan's study was never created
    lines = plan.plan_lines(cfg, ["ns_gan", "wgan"], url, 1, "cpu", 20, [], stored=stored)
    est = {line.split(":")[0].split()[-1]: line for line in lines if line.startswith("estimate")}
    # ns_gan: 5 - 3 counted = 2 trials left (26 s); wgan not started: its default and 4 more (63.4 s); total 89.4 s
    assert est["ns_gan"].endswith(f"{2 * trial_s:.0f} s for the 2 trials left (3 of 5 finished, 0 running)")
    assert est["wgan"].endswith(f"per trial (the paper default, disc_iters 5: {default_wgan:.0f} s), "
                                f"{default_wgan + 4 * trial_s:.0f} s for the 5 trials left")
    assert any(line.startswith(f"total     {2 * trial_s + default_wgan + 4 * trial_s:.0f} s of device time") for line in lines)
    text = "\n".join(lines)  # what the estimate benchmark reads
    assert parse_estimate(text, "wgan") == (pytest.approx(default_wgan + 4 * trial_s, abs=0.5), 5)

    # once the paper default has run, every trial left is at the space's disc_iters
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, value=1.0, user_attrs={"paper_default": True, "outcome": "complete"}))
    stored = plan.stored_progress(cfg, url, ["ns_gan"])
    lines = plan.plan_lines(cfg, ["ns_gan"], url, 1, "cpu", 20, [], stored=stored)
    assert any(line.endswith(f"{trial_s:.0f} s for the 1 trials left (4 of 5 finished, 0 running)") for line in lines)


def _fake_clock(warmup: int, timed: int):
    """Call order of plan.calibrate: t0, after each step up to the first evaluation, after it, after
    each later step, after the last evaluation. Warm-up steps take 100 s, then steps without a G
    update (odd: the calibration updates G every second step) 1 s and with one 3 s; the first
    evaluation 7 s, the second 5 s."""
    half = warmup + timed // 2
    ticks = [0.0]
    for s in range(1, warmup + timed + 1):
        ticks.append(ticks[-1] + (100.0 if s <= warmup else (1.0 if s % 2 else 3.0)))
        if s == half:
            ticks.append(ticks[-1] + 7.0)
    ticks.append(ticks[-1] + 5.0)
    it = iter(ticks)
    return lambda: next(it)


@pytest.mark.parametrize("space, mix, step_s", [("wide", (1, 5), 1.0 + 2.0 * (1 + 1 / 5) / 2), ("narrow", (1,), 3.0)])
def test_calibration_excludes_the_warm_up_and_follows_disc_iters(tiny_study, env, space, mix, step_s):
    cfg = load_study(str(tiny_study(space=space, steps=10, checkpoint_every=5)))
    cal = plan.calibrate(cfg, "wgan", "cpu", steps=10, warmup=3, clock=_fake_clock(3, 10))
    assert (cal.warmup, cal.timed, cal.disc_iters) == (3, 10, mix)
    assert (cal.d_step_s, cal.g_step_s, cal.eval_s) == pytest.approx((1.0, 2.0, 5.0))
    assert cal.step_s == pytest.approx(step_s)  # d + g x mean(1/k): the warm-up's 100 s steps are not in it
    # setup: the warm-up's time less as many steady steps (d + g/2 each at the calibration's disc_iters 2), plus
    # the first evaluation's extra 2 s, which is per trial unless it computed reference statistics (then once)
    assert cal.setup_s + cal.once_s == pytest.approx(3 * 100.0 - 3 * 2.0 + 2.0)
    assert cal.trial_s(cfg) == pytest.approx(cal.setup_s + 10 * step_s + 2 * 5.0)


def test_calibration_counts_the_steps_it_was_asked_for(tiny_study, env):
    cfg = load_study(str(tiny_study(steps=10, checkpoint_every=5)))
    cal = plan.calibrate(cfg, "ns_gan", "cpu", steps=5, warmup=2)
    assert (cal.warmup, cal.timed) == (2, 6)  # rounded up to even: as many steps with a G update as without
    assert cal.step_s > 0 and cal.eval_s > 0
    with pytest.raises(HarnessError, match="at least 1 warm-up step"):
        plan.calibrate(cfg, "ns_gan", "cpu", steps=4, warmup=0)


def test_missing_dataset_calibrates_on_a_stand_in(tiny_study, env, tmp_path, monkeypatch):
    def missing(root):
        raise HarnessError(f"dataset digits5k: its files are not in {root}")

    spec = data_mod.DATASETS["digits5k"]
    monkeypatch.setitem(data_mod.DATASETS, "digits5k", dataclasses.replace(spec, load=missing))
    monkeypatch.setattr(data_mod, "_CACHE", {})
    cfg = load_study(str(tiny_study(steps=10, checkpoint_every=5)))
    stats = records.cache_root() / "stats"
    before = sorted(stats.glob("*")) if stats.is_dir() else []
    cal = plan.calibrate(cfg, "ns_gan", "cpu", steps=4, warmup=1)
    assert cal.step_s > 0 and cal.eval_s > 0
    assert len(cal.notes) == 1 and "digits5k is not on this machine" in cal.notes[0] and "(1, 28, 28)" in cal.notes[0]
    assert (sorted(stats.glob("*")) if stats.is_dir() else []) == before  # the stand-in's statistics were thrown away
    assert data_mod._CACHE == {}  # the stand-in is gone after the calibration

    lines = plan.plan_lines(cfg, ["ns_gan"], "sqlite:///x.db", 1, "cpu", 4, [])
    assert not any("calibration failed" in line for line in lines)
    assert any(line.startswith("calibrate digits5k is not on this machine") for line in lines)
    with pytest.raises(HarnessError, match="not in"):  # the trials themselves still need the real data
        data_mod.load("digits5k", data_mod.resolve_root(""))
