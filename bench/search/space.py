"""Search spaces as data in natural units, and the one function that turns them into Optuna calls.

A space maps a hyperparameter name to `Float(low, high, log)`, `Choice(values)` or `Fixed(value)`
(compare_gan v1's params.py kept the same data: default, range, log scale, discrete). Fixed
values are not searched; they are recorded with the trial like every other value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Union


@dataclass(frozen=True)
class Float:
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.low < self.high or (self.log and self.low <= 0):
            raise ValueError(f"bad Float range [{self.low}, {self.high}] log={self.log}")

    def contains(self, v: Any) -> bool:
        return isinstance(v, (int, float)) and self.low <= v <= self.high


@dataclass(frozen=True)
class Choice:
    values: tuple[Any, ...]

    def contains(self, v: Any) -> bool:
        return v in self.values


@dataclass(frozen=True)
class Fixed:
    value: Any

    def contains(self, v: Any) -> bool:
        return v == self.value


Param = Union[Float, Choice, Fixed]
Space = Mapping[str, Param]


def suggest(trial: Any, space: Space) -> dict[str, Any]:
    """Ask an Optuna trial for every searched parameter of `space`; fixed ones are filled in."""
    hp: dict[str, Any] = {}
    for name, p in space.items():
        if isinstance(p, Float):
            hp[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        elif isinstance(p, Choice):
            hp[name] = trial.suggest_categorical(name, list(p.values))
        else:
            hp[name] = p.value
    return hp


def searched(space: Space) -> dict[str, Param]:
    """The parameters Optuna sees (everything but Fixed)."""
    return {k: v for k, v in space.items() if not isinstance(v, Fixed)}


def distributions(space: Space) -> dict[str, Any]:
    """The Optuna distribution each searched parameter of `space` is suggested from (`suggest`)."""
    import optuna

    out: dict[str, Any] = {}
    for name, p in searched(space).items():
        if isinstance(p, Float):
            out[name] = optuna.distributions.FloatDistribution(p.low, p.high, log=p.log)
        else:
            out[name] = optuna.distributions.CategoricalDistribution(list(p.values))
    return out


def space_change(space: Space, trials: Any) -> str | None:
    """How `space` differs from the space the given Optuna trials were drawn from (the first trial
    whose parameters or their ranges differ), or None. A parameter the space searches but a trial
    lacks counts only for trials that ended complete or pruned: another worker's running trial may be
    between two suggestions, and a killed one may have stopped there."""
    import optuna

    want = distributions(space)
    ended = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    for t in trials:
        have = t.distributions
        if not have:
            continue
        for name in sorted(set(have) | set(want)):
            if name not in want:
                return f"trial {t.number} searched {name} ({have[name]}), which the space no longer searches"
            if name not in have:
                if t.state not in ended:
                    continue
                return f"trial {t.number} did not search {name}, which the space now searches ({want[name]})"
            if have[name] != want[name]:
                return f"trial {t.number} drew {name} from {have[name]}, the space now gives {want[name]}"
    return None
