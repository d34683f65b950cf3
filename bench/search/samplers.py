"""Optuna samplers and pruners by name. `random` is the paper's protocol: each trial's draw is
seeded by (study seed, trial number, parameter), so trial n gets the same hyperparameters whichever
worker runs it and however often the study is resumed; trial 0 is the paper's default (enqueued).

Pruners stop a trial early on the objective reported at its checkpoints (the D step is the
resource). `none` is the paper's protocol: every trial runs its full length. `successive_halving`
(asynchronous, Li et al. 2020) and `hyperband` (Li et al. 2018) are efficient search, recorded
with every trial so reports can keep them apart from the paper's protocol.

For a study that is not a replication of the paper, use `random` with `successive_halving`: in the
`budget_efficiency` benchmark (issue 18; every sampler x pruner here, ring8 and tiny digits, 5 seeds)
it met the best of 30 random-search trials in a median 0.37 of their D steps on ring8 and 0.175 on
digits (random search itself first met its best at 0.67 and 0.33), and no model-based sampler did
better at that budget (README, Performance).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable

import optuna
from optuna.distributions import BaseDistribution


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any parts, stable across processes and Python versions."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


class TrialSeededRandomSampler(optuna.samplers.BaseSampler):
    """Uniform random search whose every draw is a function of (seed, trial number, name)."""

    def __init__(self, seed: int):
        self.seed = seed

    def infer_relative_search_space(self, study: optuna.Study, trial: Any) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study: optuna.Study, trial: Any, search_space: dict) -> dict[str, Any]:
        return {}

    def sample_independent(self, study: optuna.Study, trial: Any, param_name: str, param_distribution: BaseDistribution) -> Any:
        inner = optuna.samplers.RandomSampler(seed=derive_seed(self.seed, trial.number, param_name))
        return inner.sample_independent(study, trial, param_name, param_distribution)


@dataclass(frozen=True)
class SamplerSpec:
    name: str
    doc: str
    make: Callable[[int], optuna.samplers.BaseSampler]


@dataclass(frozen=True)
class PrunerSpec:
    name: str
    doc: str
    make: Callable[[int, int], optuna.pruners.BasePruner]  # (D steps per trial, checkpoint interval)


REDUCTION_FACTOR = 3  # keep the best third at each rung (Hyperband's usual eta)

PRUNERS: dict[str, PrunerSpec] = {
    p.name: p
    for p in (
        PrunerSpec("none", "no pruning: every trial runs its full length (the paper's protocol)", lambda steps, every: optuna.pruners.NopPruner()),
        PrunerSpec("successive_halving", "asynchronous successive halving on the objective at checkpoints (rungs at checkpoint x 3^k D steps)",
                   lambda steps, every: optuna.pruners.SuccessiveHalvingPruner(min_resource=every, reduction_factor=REDUCTION_FACTOR)),
        PrunerSpec("hyperband", "Hyperband: successive halving in brackets from one checkpoint to the full trial length",
                   lambda steps, every: optuna.pruners.HyperbandPruner(min_resource=every, max_resource=steps, reduction_factor=REDUCTION_FACTOR)),
    )
}

SAMPLERS: dict[str, SamplerSpec] = {
    s.name: s
    for s in (
        SamplerSpec("random", "uniform random search, seeded per trial (the paper's protocol)", TrialSeededRandomSampler),
        SamplerSpec("tpe", "Optuna's TPE (efficient search; not the paper's protocol)", lambda seed: optuna.samplers.TPESampler(seed=seed)),
        SamplerSpec("qmc", "quasi-Monte Carlo (scrambled Sobol) search", lambda seed: optuna.samplers.QMCSampler(seed=seed, scramble=True)),
        SamplerSpec("tpe_mv", "TPE modelling the parameters jointly (multivariate), 5 random start-up trials instead of 10 (efficient search)",
                    lambda seed: optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=5)),
        SamplerSpec("gp", "Optuna's Gaussian-process sampler (log expected improvement; efficient search for small budgets)",
                    lambda seed: optuna.samplers.GPSampler(seed=seed)),
    )
}
