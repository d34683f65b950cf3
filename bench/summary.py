"""Pure functions from stored trials to pandas DataFrames: the per-trial table and the per-variant summary.

Diverged trials keep their best checkpoint value when one was evaluated before the divergence
(the paper's "best over checkpoints"), and +inf otherwise; they are counted, never dropped.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import optuna
import pandas as pd

from . import records, storage
from .config import StudyConfig
from .errors import HarnessError
from .runner import optuna_study_name


def trials_frame(cfg: StudyConfig, url: str, variants: Iterable[str]) -> pd.DataFrame:
    """One row per trial: variant, number, outcome, objective value, hyperparameters, spend."""
    st = storage.open_storage(url, heartbeat=False)
    existing = set(storage.study_names(st))
    rows: list[dict[str, Any]] = []
    for variant in variants:
        name = optuna_study_name(cfg, variant)
        if name not in existing:
            continue
        study = optuna.load_study(study_name=name, storage=st)
        for t in study.get_trials(deepcopy=False):
            if t.state == optuna.trial.TrialState.WAITING:
                continue
            ua = t.user_attrs
            outcome = ua.get("outcome") or t.state.name.lower()
            rows.append({
                "study": cfg.name, "dataset": cfg.data.dataset, "variant": variant, "trial": t.number,
                "state": t.state.name.lower(), "outcome": outcome,
                "value": t.value if t.value is not None else math.nan,
                "best_step": ua.get("best_step"), "steps": ua.get("steps"), "seconds": ua.get("seconds"),
                "device": ua.get("device"), "sampler": ua.get("sampler"), "paper_default": bool(ua.get("paper_default")),
                "reason": ua.get("reason") or ua.get("error") or "",
                **{f"hp_{k}": v for k, v in (ua.get("hparams") or {}).items()},
            })
    return pd.DataFrame(rows)


def summarize(trials: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per variant: trial counts by outcome and the objective's min/median/max, with the best hyperparameters."""
    if trials.empty:
        raise HarnessError("no trials recorded yet for this study; run `make study` first")
    out = []
    for variant, g in trials.groupby("variant", sort=False):
        scored = g[g["outcome"].isin(["complete", "diverged"])]
        vals = scored["value"].astype(float)
        finite = vals[vals.map(math.isfinite)]
        row: dict[str, Any] = {
            "variant": variant, "trials": len(g), "complete": int((g["outcome"] == "complete").sum()),
            "diverged": int((g["outcome"] == "diverged").sum()), "failed": int((g["outcome"] == "failed").sum()),
            "pruned": int((g["outcome"] == "pruned").sum()),
            f"{metric}_min": finite.min() if len(finite) else math.nan,
            f"{metric}_median": vals.median() if len(vals) else math.nan,
            f"{metric}_max": finite.max() if len(finite) else math.nan,
        }
        if len(finite):
            best = scored.loc[finite.idxmin()]
            row["best_trial"] = int(best["trial"])
            hp = {c[3:]: best[c] for c in g.columns if c.startswith("hp_") and pd.notna(best[c])}
            row["best_hparams"] = ", ".join(f"{k}={_fmt(v)}" for k, v in hp.items())
        out.append(row)
    return pd.DataFrame(out)


def _fmt(v: Any) -> str:
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def write_summary(cfg: StudyConfig, url: str, variants: Iterable[str]) -> tuple[pd.DataFrame, Any]:
    trials = trials_frame(cfg, url, variants)
    summary = summarize(trials, cfg.eval.metrics[0])
    path = records.study_dir(cfg.name) / "summary.csv"
    records.atomic_write_bytes(path, summary.to_csv(index=False).encode())
    records.atomic_write_bytes(path.with_name("trials.csv"), trials.to_csv(index=False).encode())
    return summary, path
