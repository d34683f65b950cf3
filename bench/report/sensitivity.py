"""Sensitivity of each variant to its hyperparameters: Optuna's importance evaluators on the
per-trial best scores, and score against learning rate (the paper's sensitivity view, Lucic et al.
2018, figure 5: FID of every run against its learning rate, one panel per model).

Importance is computed on an in-memory copy of each variant's trials that have a finite score, with
the search distributions the runner used (kept in the tidy frame's attrs). Evaluators: `ped_anova`
(Optuna's default: fast, rank based; meaningful from tens of trials), `fanova` (random-forest
functional ANOVA; about 40 s for 2,500 trials on these CPUs), `mdi` (mean decrease in impurity).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

EVALUATORS = ("ped_anova", "fanova", "mdi")


def _evaluator(name: str, seed: int) -> Any:
    import optuna

    if name == "ped_anova":
        return optuna.importance.PedAnovaImportanceEvaluator()
    if name == "fanova":
        return optuna.importance.FanovaImportanceEvaluator(seed=seed)
    if name == "mdi":
        return optuna.importance.MeanDecreaseImpurityImportanceEvaluator(seed=seed)
    raise ValueError(f"importance evaluator {name!r}: expected one of {', '.join(EVALUATORS)}")


def _native(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _covering(dist: Any, values: list[Any]) -> Any:
    """The distribution widened to hold every observed value: trial 0 is the paper's default, which
    can lie outside the narrow space (mm_gan's learning rate 5e-5 against [1e-4, 1e-3])."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    seen = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    if isinstance(dist, CategoricalDistribution):
        extra = [v for v in dict.fromkeys(seen) if v not in dist.choices]
        return CategoricalDistribution(list(dist.choices) + extra) if extra else dist
    if isinstance(dist, (FloatDistribution, IntDistribution)) and seen:
        low, high = min(dist.low, min(seen)), max(dist.high, max(seen))
        if (low, high) != (dist.low, dist.high):
            kind = type(dist)
            return kind(low, high, log=dist.log) if dist.step is None or dist.log else kind(low, high, step=dist.step)
    return dist


def _Ready(trials: list[Any]) -> Any:
    """An in-memory Optuna storage whose one study holds `trials` as they are. The importance
    evaluators only read a study's trials; Study.add_trials would validate and deep-copy each one
    (about 2.5 s of a 10,000-trial report)."""
    from optuna.storages import InMemoryStorage

    class Ready(InMemoryStorage):
        def get_all_trials(self, study_id: int, deepcopy: bool = True, states: Any = None) -> list[Any]:
            return [t for t in trials if states is None or t.state in states]

    return Ready()


def importance(best: pd.DataFrame, evaluator: str = "ped_anova", seed: int = 0) -> pd.DataFrame:
    """Per (dataset, variant, param): importance (summing to 1 per variant), the evaluator, the number
    of trials used, and `note` when it could not be computed (too few trials, nothing searched)."""
    import optuna
    from optuna.distributions import json_to_distribution
    from optuna.trial import FrozenTrial, TrialState

    from bench import storage

    ev = _evaluator(evaluator, seed)
    all_dists = best.attrs.get("distributions", {})
    rows: list[dict[str, Any]] = []
    for (dataset, variant), g in best.groupby(["dataset", "variant"], sort=False):
        dists = {k: json_to_distribution(d) for k, d in all_dists.get(variant, {}).items()}
        dists = {k: d for k, d in dists.items() if not d.single() and f"hp_{k}" in g}
        ok = g[np.isfinite(g["score"].to_numpy(float))]
        base = {"dataset": dataset, "variant": variant, "evaluator": evaluator, "trials": len(ok)}
        if not dists:
            rows.append({**base, "param": "", "importance": np.nan, "note": "no searched hyperparameter recorded"})
            continue
        if len(ok) < 2:
            rows.append({**base, "param": "", "importance": np.nan, "note": f"{len(ok)} trial(s) with a finite score; need at least 2"})
            continue
        cols = {k: ok[f"hp_{k}"].map(_native).tolist() for k in dists}
        dists = {k: _covering(d, cols[k]) for k, d in dists.items()}
        trials = []
        for i, score in enumerate(ok["score"].tolist()):
            params = {k: cols[k][i] for k in dists}
            if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in params.values()):
                continue
            # FrozenTrial as create_trial makes it, numbered as add_trial numbers it; every value lies in
            # its (covering) distribution, so create_trial's per-trial validation is left out
            trials.append(FrozenTrial(number=len(trials), state=TrialState.COMPLETE, value=score, values=None, datetime_start=None,
                                      datetime_complete=None, params=params, distributions=dists, user_attrs={}, system_attrs={},
                                      intermediate_values={}, trial_id=len(trials)))
        try:
            with storage.optuna_log_level(optuna.logging.WARNING):  # no "new study created in memory" lines
                study = optuna.create_study(storage=_Ready(trials), direction="minimize")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    imp = optuna.importance.get_param_importances(study, evaluator=ev, normalize=True)
        except (RuntimeError, ValueError) as e:  # e.g. every trial has the same score
            rows.append({**base, "param": "", "importance": np.nan, "note": f"not computable: {e}"})
            continue
        rows += [{**base, "param": k, "importance": float(v), "note": ""} for k, v in imp.items()]
    return pd.DataFrame(rows, columns=["dataset", "variant", "param", "importance", "evaluator", "trials", "note"])


def learning_rate_view(best: pd.DataFrame) -> pd.DataFrame:
    """Scored trials with their learning rate and score (inf = diverged), for the sensitivity plot."""
    if "hp_learning_rate" not in best:
        return pd.DataFrame(columns=["dataset", "variant", "trial", "state", "learning_rate", "score"])
    g = best[best["score"].notna()]
    return g[["dataset", "variant", "trial", "state", "hp_learning_rate", "score"]].rename(columns={"hp_learning_rate": "learning_rate"})
