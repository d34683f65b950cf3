"""Budget efficiency: the D steps TPE with pruning needs to reach the best objective of N random-search trials.

For each study seed, a random search (the paper's protocol: no pruning) runs N full trials of
ns_gan in the wide space; its best value over all checkpoints is the target, and its cost is
the D steps it trained (N x steps). Then TPE with successive-halving pruning (efficient search,
not the paper's protocol) searches the same space from the same seed, and the D steps it has
trained when a checkpoint first scores at or below the target are counted: every step of every
earlier trial (complete, pruned or diverged) plus the steps of the current one. The figure is
that count over the random search's, the median over 5 study seeds (goal <= 25 %); a search that
does not reach the target within the random search's own budget counts as `inf`.

The quick task is `ring8` (8 Gaussians, Metz et al. 2017) with the `mlp` pair and the sliced
Wasserstein objective (swd_ring8_10k_test), so the whole benchmark fits in a few CPU minutes.
Trials run through `train.run_trial`, the loop every study uses, with Optuna's in-memory
storage: the subject is the sampler and pruner, not the storage. Neither search enqueues the
paper's default as trial 0, so both start from their own first draw.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from pathlib import Path
from typing import Any

import optuna
import torch

from bench import storage
from bench.benchmarks import benchmark
from bench.config import StudyConfig, parse_study
from bench.gan.variants import VARIANTS
from bench.search import space
from bench.search.samplers import PRUNERS, SAMPLERS
from bench.trial import train

VARIANT = "ns_gan"
SEEDS = (0, 1, 2, 3, 4)


class Reached(Exception):
    """Raised from the evaluation hook when the target is first met, to stop the search at once."""


def task(steps: int, every: int) -> StudyConfig:
    raw = {
        "study": {"name": "budget-efficiency", "space": "wide", "variants": [VARIANT]},
        "data": {"dataset": "ring8"},
        "model": {"architecture": "mlp", "width": 1.0, "z_dim": 64},
        "train": {"batch_size": 64, "steps": steps, "checkpoint_every": every, "log_every": every, "device": "cpu",
                  "keep_checkpoints": False},
        "eval": {"metrics": ["swd_ring8_10k_test"], "batch_size": 10_000, "generator_mode": "eval"},
    }
    return parse_study(raw, "<budget_efficiency>", "budget-efficiency")


def pruner(cfg: StudyConfig) -> optuna.pruners.BasePruner:
    """The harness's `successive_halving` pruner (asynchronous, rungs at checkpoint x 3^k D steps)."""
    return PRUNERS["successive_halving"].make(cfg.train.steps, cfg.train.checkpoint_every)


def search(cfg: StudyConfig, sampler: str, seed: int, budget_steps: int, prune: bool,
           target: float = -math.inf, workdir: Path | None = None) -> dict[str, Any]:
    """Run trials until `budget_steps` D steps are spent or a checkpoint scores <= target.

    Returns the best value, the D steps spent, the D steps at which the target was met (None if
    never), and the trial count."""
    variant = VARIANTS[VARIANT]
    sp = variant.space(cfg.study.space, cfg.study.fixed)
    device = torch.device(cfg.train.device)
    state: dict[str, Any] = {"spent": 0, "best": math.inf, "reached": None, "trials": 0}

    def objective(trial: optuna.Trial) -> float:
        hp = space.suggest(trial, sp)
        ran = {"steps": 0}

        def on_eval(step: int, value: float) -> None:
            ran["steps"] = step
            state["best"] = min(state["best"], value)
            if value <= target:
                state["reached"] = state["spent"] + step
                raise Reached
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned

        state["trials"] += 1
        with tempfile.TemporaryDirectory(dir=workdir) as d:
            try:
                result = train.run_trial(cfg, variant, hp, train.trial_seeds(seed, trial.number), Path(d), device, on_eval)
            finally:
                state["spent"] += ran["steps"]
        state["spent"] += result.steps - ran["steps"]  # a divergence after the last checkpoint
        return result.value

    with storage.optuna_log_level(optuna.logging.ERROR):  # the stop by `Reached` is not a failure to report
        study = optuna.create_study(direction="minimize", sampler=SAMPLERS[sampler].make(seed),
                                    pruner=pruner(cfg) if prune else optuna.pruners.NopPruner())
        try:
            while state["spent"] + cfg.train.steps <= budget_steps:
                study.optimize(objective, n_trials=1, catch=())
        except Reached:
            pass
    return state


def efficiency(cfg: StudyConfig, trials: int, seed: int) -> dict[str, Any]:
    budget = trials * cfg.train.steps
    rand = search(cfg, "random", seed, budget, prune=False)
    tpe = search(cfg, "tpe", seed, rand["spent"], prune=True, target=rand["best"])
    fraction = tpe["reached"] / rand["spent"] if tpe["reached"] is not None else math.inf
    return {"seed": seed, "target": round(rand["best"], 5), "random_steps": rand["spent"], "random_trials": rand["trials"],
            "tpe_steps_to_target": tpe["reached"], "tpe_trials": tpe["trials"], "fraction": round(fraction, 3)}


@benchmark("budget_efficiency")
def budget_efficiency(quick: bool) -> dict[str, Any]:
    """(TPE + successive halving D steps to reach random search's best) / (random search's D steps), median of 5 seeds."""
    steps, every, trials, seeds = (40, 20, 2, SEEDS[:1]) if quick else (300, 100, 8, SEEDS)
    cfg = task(steps, every)
    rows = [efficiency(cfg, trials, s) for s in seeds]
    return {
        "ratio": statistics.median(r["fraction"] for r in rows),
        "goal": "<= 0.25",
        "detail": {"task": "ring8, mlp, ns_gan wide space, swd_ring8_10k_test", "random_trials": trials,
                   "steps_per_trial": steps, "checkpoint_every": every, "pruner": "successive_halving (PRUNERS)",
                   "per_seed": rows},
        "command": "python -m bench.benchmarks budget_efficiency",
    }
