"""The budget rule (budget.py) on hand-built trials, a randomized many-worker schedule that must
never overfill the budget, and the sampler/pruner registries."""

from __future__ import annotations

import random

import optuna
import pytest
from optuna.trial import TrialState

from bench.search.samplers import PRUNERS, SAMPLERS
from bench.study import budget as B


def trial(number: int, state: TrialState = TrialState.COMPLETE, **ua) -> optuna.trial.FrozenTrial:
    t = optuna.trial.create_trial(state=state, value=1.0 if state == TrialState.COMPLETE else None, user_attrs=ua)
    t.number = number
    return t


def test_outcomes_and_what_counts():
    S = TrialState
    cases = [
        (trial(0, outcome="complete", steps=10), "complete", True),
        (trial(1, outcome="diverged", steps=4), "diverged", True),
        (trial(2, S.PRUNED, outcome="pruned", steps=5), "pruned", True),
        (trial(3, S.FAIL, outcome="failed"), "failed", True),
        (trial(4, S.RUNNING), "running", True),
        (trial(5, S.FAIL), "lost", False),  # heartbeat went stale: re-queued by Optuna
        (trial(6, S.FAIL, outcome="interrupted"), "interrupted", False),
        (trial(7, S.FAIL, outcome="over_budget"), "over_budget", False),
        (trial(8, S.WAITING), "waiting", False),
    ]
    for t, outcome, counted in cases:
        assert (B.outcome(t), B.counts(t)) == (outcome, counted), t.number
    tally = B.tally(t for t, _, _ in cases)
    assert (tally.counted, tally.finished, tally.steps) == (5, 4, 19)


def test_the_last_slot_goes_to_the_lower_number_and_the_other_is_given_back():
    budget = B.Budget(trials=12)
    trials = [trial(i) for i in range(11)] + [trial(11, TrialState.RUNNING), trial(12, TrialState.RUNNING)]
    assert B.admits(trials, 11, budget, 10) is None
    assert "budget of 12 trials" in B.admits(trials, 12, budget, 10)
    # Before asking, both workers saw room; afterwards nobody does.
    assert B.full(trials[:11], budget, 10) is None
    assert "taken" in B.full(trials, budget, 10)


def test_a_queued_trial_ahead_blocks_a_fresh_one_but_lost_and_given_back_do_not():
    budget = B.Budget(trials=3)
    base = [trial(0), trial(1, TrialState.FAIL), trial(2, TrialState.FAIL, outcome="over_budget"), trial(3)]
    assert B.admits(base + [trial(4, TrialState.RUNNING)], 4, budget, 10) is None
    assert B.admits(base + [trial(4, TrialState.WAITING), trial(5, TrialState.RUNNING)], 5, budget, 10) is not None


def test_steps_budget_counts_spent_steps_of_finished_and_planned_steps_of_running():
    budget = B.Budget(trials=100, steps=40)
    trials = [trial(0, outcome="complete", steps=10), trial(1, TrialState.PRUNED, outcome="pruned", steps=5), trial(2, TrialState.RUNNING)]
    # 10 + 5 + 10 (running, planned) = 25 committed: one more 10-step trial fits, not two.
    assert B.full(trials, budget, 10) is None
    trials.append(trial(3, TrialState.RUNNING))
    assert B.admits(trials, 3, budget, 10) is None
    trials.append(trial(4, TrialState.RUNNING))
    assert "D steps" in B.admits(trials, 4, budget, 10)
    assert "D steps" in B.full(trials, budget, 10)


def test_seconds_budget_uses_the_mean_of_finished_trials_for_running_ones():
    budget = B.Budget(trials=100, seconds=100.0)
    done = [trial(i, outcome="complete", seconds=20.0) for i in range(3)]  # 60 s spent
    assert B.full(done, budget, 10) is None  # 60 + 1 x 20 <= 100
    assert B.full(done + [trial(3, TrialState.RUNNING)], budget, 10) is None  # 60 + 2 x 20 <= 100
    assert "device-s" in B.full(done + [trial(3, TrialState.RUNNING), trial(4, TrialState.RUNNING)], budget, 10)


def test_status_line_names_done_running_failed_and_budget():
    budget = B.Budget(trials=4, steps=0)
    line = B.status_line("s:wgan", [trial(0, outcome="complete", steps=10, seconds=3.0), trial(1, TrialState.FAIL, outcome="failed", steps=2),
                                    trial(2, TrialState.RUNNING), trial(3, TrialState.FAIL)], budget, 10)
    assert line.startswith("s:wgan: 2/4 done · 1 running · 1 failed") and "1 lost" in line and "12 D steps" in line
    assert "budget spent" not in line
    assert "budget spent" in B.status_line("s:wgan", [trial(i, steps=10) for i in range(4)], budget, 10)


def test_random_schedules_of_many_workers_never_overfill_and_always_fill_the_budget():
    for seed in range(400):
        simulate(seed)


def simulate(seed: int) -> None:
    """Workers interleave their steps at random: look, ask (pop the queue first, as Optuna
    does, else create), check, then finish or die (a dead worker's trial goes stale and is
    re-queued). Without the check Optuna's overshoot appears; without counting queued trials
    ahead, a trial re-queued between another worker's pop and create overfills it."""
    rng = random.Random(seed)
    budget = B.Budget(trials=rng.randint(1, 6))
    trials: list[optuna.trial.FrozenTrial] = []
    workers = [{"phase": "look", "trial": None, "died": False} for _ in range(rng.randint(2, 6))]
    deaths = rng.randint(0, 3)

    def pop() -> optuna.trial.FrozenTrial | None:
        for t in trials:
            if t.state == TrialState.WAITING:
                t.state = TrialState.RUNNING
                return t
        return None

    for _ in range(10_000):
        active = [w for w in workers if w["phase"] != "done"]
        if not active:
            break
        w = rng.choice(active)
        if w["phase"] == "look":
            if B.full(trials, budget, 10) is None:
                w["phase"] = "ask"
            elif not any(t.state == TrialState.RUNNING for t in trials):
                w["phase"] = "done"
        elif w["phase"] == "ask":  # Optuna's ask: pop the queue, or (a moment later) create a trial
            w["trial"] = pop()
            w["phase"] = "check" if w["trial"] else "create"
        elif w["phase"] == "create":
            w["trial"] = trial(len(trials), TrialState.RUNNING)
            trials.append(w["trial"])
            w["phase"] = "check"
        elif w["phase"] == "check":
            t = w["trial"]
            if B.admits(trials, t.number, budget, 10) is None:
                w["phase"] = "run"
            else:
                t.state, t.user_attrs["outcome"], w["phase"] = TrialState.FAIL, "over_budget", "look"
        elif w["phase"] == "run":
            t = w["trial"]
            if deaths and rng.random() < 0.3:
                deaths -= 1
                t.state = TrialState.FAIL  # lost; the heartbeat retry re-queues a copy
                trials.append(trial(len(trials), TrialState.WAITING))
                w["phase"], w["died"] = "done", True
            else:
                t.state, t.user_attrs["outcome"], t.user_attrs["steps"] = TrialState.COMPLETE, "complete", 10
                w["phase"] = "look"
        finished = sum(B.counts(t) and t.state.is_finished() for t in trials)
        assert finished <= budget.trials, f"seed {seed}: {finished} finished of a budget of {budget.trials}"
    else:
        pytest.fail(f"seed {seed}: the schedule did not end")
    finished = sum(B.counts(t) and t.state.is_finished() for t in trials)
    if all(w["died"] for w in workers):
        assert finished < budget.trials or not any(t.state == TrialState.WAITING for t in trials), f"seed {seed}"
    else:  # a worker that saw no room and nothing running left the budget exactly filled
        assert finished == budget.trials, f"seed {seed}: {finished} finished of a budget of {budget.trials}"


@pytest.mark.parametrize("name", list(PRUNERS))
def test_every_pruner_builds_and_none_never_prunes(name):
    pruner = PRUNERS[name].make(100, 10)
    assert isinstance(pruner, optuna.pruners.BasePruner) and PRUNERS[name].doc
    # Hyperband puts a trial in a bracket by hashing the study name and trial number: a fixed name
    # keeps the test deterministic, and 30 earlier trials leave no bracket empty.
    study = optuna.create_study(study_name="pruner-test", pruner=pruner)
    rungs = {f"completed_rung_{k}": 0.0 for k in range(3)}
    for _ in range(30):  # perfect earlier trials in every Hyperband bracket
        study.add_trial(optuna.trial.create_trial(value=0.0, intermediate_values={10: 0.0, 30: 0.0, 90: 0.0, 100: 0.0}, system_attrs=rungs))
    t = study.ask()
    pruned = False
    for step in (10, 30, 90):  # checkpoints; Hyperband's later brackets first judge at 30 or 90
        t.report(50.0, step)
        pruned = pruned or t.should_prune()
    assert pruned is (name != "none")


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_every_sampler_is_seeded(name):
    def draws() -> list[float]:
        study = optuna.create_study(sampler=SAMPLERS[name].make(3))
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
        return [t.params["x"] for t in study.trials]

    assert draws() == draws()
