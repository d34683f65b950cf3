"""The equal-compute budget of a study (Lucic et al. 2018: every variant gets the same budget),
as pure functions of the trials in the storage, so every worker on every machine decides alike.

A budget is a number of trials per variant and, optionally, a total of D steps and of
device-seconds. Trials that *count* toward it: complete, diverged, pruned, failed with an error,
and running. Trials that do not: those given back (over budget), interrupted (Ctrl-C), aborted
(the machine's fault: missing data, a full disk) and lost (their worker died; the heartbeat marks
them stale) - those are re-queued and rerun.

Two workers that both see one free slot both ask Optuna for a trial (Optuna's MaxTrialsCallback
counts before asking and so overshoots). Here each worker checks *after* asking: ordered by trial
number, the trials that count or may still count (running, finished, waiting in the queue) ahead
of its own must leave room for it; otherwise it gives the trial back. Numbers are assigned at
creation and never reused, and a trial ahead that does not count now never will, so the checks of
all workers agree and the finished trials never exceed the budget.

D steps: finished trials count the steps they ran, running and queued ones the steps they may
run, so the steps budget is exact too. Device-seconds cannot be known before a trial ends: a new
trial starts only while the seconds spent plus an estimate for the running ones and itself (the
mean of the finished trials) fit; a running trial is never cut short.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Iterable

from optuna.trial import FrozenTrial, TrialState

# Outcomes that never count: the trial is re-queued (interrupted, lost) or was never started.
UNCOUNTED = ("over_budget", "interrupted", "aborted")


@dataclass(frozen=True)
class Budget:
    trials: int  # trials per variant (the paper's budget)
    steps: int = 0  # total D steps per variant; 0 = no limit
    seconds: float = 0.0  # total device-seconds per variant; 0 = no limit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Budget":
        return cls(int(d["trials"]), int(d.get("steps") or 0), float(d.get("seconds") or 0.0))

    def describe(self) -> str:
        parts = [f"{self.trials} trials"]
        if self.steps:
            parts.append(f"{self.steps:,} D steps")
        if self.seconds:
            parts.append(f"{self.seconds:,.0f} device-s")
        return " / ".join(parts)


def left_unequal(stored: dict[str, Budget], requested: Budget, targets: list[str]) -> dict[str, Budget]:
    """The stored variants outside `targets` when giving `targets` (the variants a command creates or
    resumes) the budget `requested` would leave the variants of one study with unequal budgets;
    empty when it would not. `stored`: the budget recorded for each variant already in the storage.
    A budget change is thus allowed only when it reaches every stored variant, or matches them."""
    kept = {v: b for v, b in stored.items() if v not in targets}
    after = set(kept.values()) | ({requested} if targets else set())
    return kept if len(after) > 1 else {}


def describe_each(budgets: dict[str, Budget], n: dict[str, int] | None = None, what: str = "done") -> str:
    """'ns_gan 2 trials (n = 1 done), wgan 5 trials (n = 5 done)': each variant's budget and n."""
    return ", ".join(f"{v} {b.describe()}" + (f" (n = {n.get(v, 0)} {what})" if n is not None else "") for v, b in budgets.items())


def outcome(t: FrozenTrial) -> str:
    """What became of a trial: complete, diverged, pruned, failed, over_budget, interrupted,
    aborted, lost (its worker stopped sending heartbeats), running or waiting.

    Optuna's state decides; the runner's `outcome` attribute only refines it. A trial failed as
    stale after its worker had written "complete" is lost: it was re-queued and runs again."""
    S = TrialState
    o = t.user_attrs.get("outcome")
    if t.state == S.RUNNING:
        return "running"
    if t.state == S.WAITING:
        return "waiting"
    if t.state == S.PRUNED:
        return "pruned"
    if t.state == S.COMPLETE:
        return o if o in ("complete", "diverged") else "complete"
    return o if o in ("failed", *UNCOUNTED) else "lost"


def counts(t: FrozenTrial) -> bool:
    """Does this trial take a slot of the budget (now or for good)?"""
    return outcome(t) not in (*UNCOUNTED, "lost", "waiting")


def steps_of(t: FrozenTrial, planned: int) -> int:
    """D steps a trial spent (finished) or may still spend (running, waiting)."""
    if t.state.is_finished():
        return int(t.user_attrs.get("steps") or 0)
    return planned


@dataclass(frozen=True)
class Tally:
    outcomes: dict[str, int]  # outcome -> number of trials
    counted: int  # trials that take a slot (finished ones and running ones)
    finished: int  # counted and finished
    steps: int  # D steps spent by finished trials that count
    seconds: float  # device-seconds spent by finished trials that count

    def get(self, name: str) -> int:
        return self.outcomes.get(name, 0)


def tally(trials: Iterable[FrozenTrial]) -> Tally:
    out: dict[str, int] = {}
    counted = finished = steps = 0
    seconds = 0.0
    for t in trials:
        o = outcome(t)
        out[o] = out.get(o, 0) + 1
        if counts(t):
            counted += 1
            if t.state.is_finished():
                finished += 1
                steps += int(t.user_attrs.get("steps") or 0)
                seconds += float(t.user_attrs.get("seconds") or 0.0)
    return Tally(out, counted, finished, steps, seconds)


def _mean_seconds(trials: list[FrozenTrial]) -> float:
    spent = [float(t.user_attrs["seconds"]) for t in trials if t.state.is_finished() and counts(t) and "seconds" in t.user_attrs]
    return sum(spent) / len(spent) if spent else 0.0


def full(trials: Iterable[FrozenTrial], budget: Budget, planned_steps: int) -> str | None:
    """Before asking: None while a new trial may start, else the reason none may."""
    trials = list(trials)
    slot = [t for t in trials if counts(t)]
    if len(slot) >= budget.trials:
        return f"the budget of {budget.trials} trials is taken ({sum(t.state.is_finished() for t in slot)} finished, {sum(not t.state.is_finished() for t in slot)} running)"
    if budget.steps:
        committed = sum(steps_of(t, planned_steps) for t in slot)
        if committed + planned_steps > budget.steps:
            return f"the budget of {budget.steps:,} D steps is taken ({committed:,} spent or committed; a trial needs {planned_steps:,})"
    if budget.seconds:
        spent = sum(float(t.user_attrs.get("seconds") or 0.0) for t in slot if t.state.is_finished())
        running = sum(not t.state.is_finished() for t in slot)
        estimate = _mean_seconds(trials)
        if spent >= budget.seconds or spent + (running + 1) * estimate > budget.seconds:
            return f"the budget of {budget.seconds:,.0f} device-s is taken ({spent:,.0f} s spent, {running} running at about {estimate:,.0f} s each)"
    return None


def admits(trials: Iterable[FrozenTrial], number: int, budget: Budget, planned_steps: int) -> str | None:
    """After asking for trial `number`: None if it may run, else why it must be given back.

    Only trials numbered before it decide: those counting now and those still queued (a queued
    trial may yet count). See the module docstring for why this never lets the budget overflow.
    """
    ahead = [t for t in trials if t.number < number and (counts(t) or t.state == TrialState.WAITING)]
    if len(ahead) >= budget.trials:
        return f"{len(ahead)} trials ahead of it take the budget of {budget.trials} trials (another worker asked at the same time)"
    if budget.steps:
        committed = sum(steps_of(t, planned_steps) for t in ahead)
        if committed + planned_steps > budget.steps:
            return f"trials ahead of it commit {committed:,} of the budget of {budget.steps:,} D steps"
    return None


@dataclass(frozen=True)
class Left:
    trials: int  # new trials the budget still admits
    finished: int  # trials that took a slot and ended (complete, diverged, pruned, failed)
    running: int  # trials that took a slot and run now (not in `trials`)
    seconds: float  # device-seconds the budget leaves; inf without a seconds budget


def left(trials: Iterable[FrozenTrial], budget: Budget, planned_steps: int) -> Left:
    """What is left of `budget` for new trials: the slots not taken by finished or running trials,
    no more than the D steps left allow (running trials commit their planned steps), and the
    device-seconds not yet spent (what a dry run estimates on a partly done study)."""
    trials = list(trials)
    t = tally(trials)
    n = max(0, budget.trials - t.counted)
    if budget.steps:
        committed = sum(steps_of(x, planned_steps) for x in trials if counts(x))
        n = min(n, max(0, budget.steps - committed) // planned_steps)
    seconds = max(0.0, budget.seconds - t.seconds) if budget.seconds else math.inf
    return Left(n, t.finished, t.counted - t.finished, seconds)


def status_line(name: str, trials: Iterable[FrozenTrial], budget: Budget, planned_steps: int) -> str:
    """One line a user can watch: done/budget, running, failed, the rest, and the spend."""
    trials = list(trials)
    t = tally(trials)
    spent = t.get("running") == 0 and full(trials, budget, planned_steps) is not None
    head = f"{name}: {t.finished}/{budget.trials} done" + (" (budget spent)" if spent else "")
    parts = [f"{t.get('running')} running", f"{t.get('failed')} failed"]
    for key in ("complete", "diverged", "pruned", "waiting", "lost", "interrupted", "aborted", "over_budget"):
        if t.get(key):
            parts.append(f"{t.get(key)} {key.replace('_', ' ')}")
    spend = f"{t.steps:,} D steps" + (f" of {budget.steps:,}" if budget.steps else "")
    spend += f", {_fmt_seconds(t.seconds)}" + (f" of {_fmt_seconds(budget.seconds)}" if budget.seconds else "") + " device time"
    return f"{head} · {' · '.join(parts)} · {spend}"


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
