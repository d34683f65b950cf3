"""Synthetic studies for tests and the report benchmark: records shaped exactly like
`storage.export_studies` returns them, and a bulk writer that puts them into an Optuna SQLite file.

Scores are drawn from a made-up model (FID rising away from a per-variant best learning rate, some
runs diverging, a few pruned or failed); they exercise the report, they are never results.
Writing 10,000 trials through Optuna's API takes minutes here (one ORM transaction per trial), so
`write_sqlite` creates the studies through Optuna and bulk-inserts their trials into its tables;
`check_sqlite` reads a sample back through Optuna's public API to prove the rows are what Optuna
itself would have written.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from bench.config import StudyConfig

LR = '{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.0001, "high": 0.001, "log": true}}'
BN = '{"name": "CategoricalDistribution", "attributes": {"choices": [true, false]}}'
CLIP = '{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.01, "high": 1.0, "log": true}}'


def synthetic_export(trials_per_variant: int, variants: tuple[str, ...] = ("mm_gan", "ns_gan", "wgan", "wgan_gp"),
                     study: str = "synthetic", dataset: str = "mnist", checkpoints: int = 4, seed: int = 0,
                     metrics: tuple[str, ...] = ("fid_lenet_digits5k_1k_test",)) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    cfg = StudyConfig().to_dict()
    cfg["study"].update(name=study, variants=list(variants), trials=trials_per_variant)
    cfg["data"]["dataset"] = dataset
    cfg["eval"]["metrics"] = list(metrics)
    steps = [250 * (i + 1) for i in range(checkpoints)]
    out = []
    for vi, variant in enumerate(variants):
        trials = []
        best_lr = 10 ** (-3.6 + 0.2 * vi)
        for n in range(trials_per_variant):
            lr = float(10 ** rng.uniform(-4, -3))
            bn = bool(rng.integers(2))
            params: dict[str, Any] = {"learning_rate": lr, "d_batchnorm": bn}
            dists = {"learning_rate": LR, "d_batchnorm": BN}
            if variant == "wgan":
                params["clip"] = float(10 ** rng.uniform(-2, 0))
                dists["clip"] = CLIP
            base = 10 + 3 * vi + 40 * abs(math.log10(lr / best_lr)) + 4 * bn
            curve = [base * (1 + 2 / (i + 1)) + rng.gamma(2, 2) for i in range(checkpoints)]
            u = rng.uniform()
            outcome = "complete"
            if u < 0.08:
                outcome, cut = "diverged", int(rng.integers(0, checkpoints))
                curve = curve[:cut] + [math.inf]
            elif u < 0.10:
                outcome, cut = "pruned", int(rng.integers(1, checkpoints))
                curve = curve[:cut]
            elif u < 0.11:
                outcome, curve = "failed", []
            evals = [{"step": s, **{m: v * (1 + 0.1 * j) for j, m in enumerate(metrics)}} for s, v in zip(steps, curve)]
            finite = [v for v in curve if math.isfinite(v)]
            ua: dict[str, Any] = {"hparams": {**params, "beta1": 0.5, "disc_iters": 1}, "outcome": outcome, "sampler": "random",
                                  "space": "narrow", "device": "cpu", "seeds": {"torch": n}, "paper_default": n == 0}
            value = None
            if outcome in ("complete", "diverged"):
                value = min(finite) if finite else math.inf
                ua.update(steps=steps[len(curve) - 1] if curve else 0, seconds=round(float(rng.uniform(2, 4)), 3),
                          best_step=steps[curve.index(min(finite))] if finite else None,
                          evaluations=[{k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in e.items()} for e in evals],
                          reason="non-finite fid at D step" if outcome == "diverged" else "")
            elif outcome == "failed":
                ua["error"] = "RuntimeError: synthetic failure"
            state = {"complete": "complete", "diverged": "complete", "pruned": "pruned", "failed": "fail"}[outcome]
            if outcome == "pruned":
                value = curve[-1]
            trials.append({"number": n, "state": state, "value": value, "params": params, "distributions": dists,
                           "user_attrs": ua, "intermediate": {s: v for s, v in zip(steps, curve)}})
        out.append({"name": f"{study}:{variant}", "user_attrs": {"config": cfg, "variant": variant, "compat_digest": "synthetic"},
                    "trials": trials})
    return out


def write_sqlite(url: str, exported: list[dict[str, Any]]) -> None:
    """Create the studies through Optuna, then bulk-insert their trials into its RDB tables."""
    import datetime

    import optuna
    from optuna.distributions import json_to_distribution
    from sqlalchemy import text

    from bench import storage

    st = storage.open_storage(url, heartbeat=False)
    now = datetime.datetime(2026, 1, 1)
    with st.engine.begin() as conn:
        next_id = (conn.execute(text("SELECT MAX(trial_id) FROM trials")).scalar() or 0) + 1
    for s in exported:
        with storage.optuna_log_level(optuna.logging.WARNING):  # no "new study created" line per study
            study = optuna.create_study(study_name=s["name"], storage=st, direction="minimize")
        for k, v in s["user_attrs"].items():
            study.set_user_attr(k, v)
        sid = study._study_id
        rows: dict[str, list[dict[str, Any]]] = {"t": [], "v": [], "p": [], "u": [], "i": []}
        for t in s["trials"]:
            tid, next_id = next_id, next_id + 1
            rows["t"].append({"id": tid, "n": t["number"], "s": sid, "st": t["state"].upper(), "d": now})
            if t["value"] is not None:
                inf = math.isinf(t["value"])
                rows["v"].append({"id": tid, "v": None if inf else t["value"], "ty": "INF_POS" if inf else "FINITE"})
            for name, value in t["params"].items():
                dist = json_to_distribution(t["distributions"][name])
                rows["p"].append({"id": tid, "n": name, "v": dist.to_internal_repr(value), "d": t["distributions"][name]})
            for key, value in t["user_attrs"].items():
                rows["u"].append({"id": tid, "k": key, "v": json.dumps(value)})
            for step, value in t["intermediate"].items():
                inf = math.isinf(value)
                rows["i"].append({"id": tid, "st": step, "v": None if inf else value, "ty": "INF_POS" if inf else "FINITE"})
        with st.engine.begin() as conn:
            sql = {
                "t": "INSERT INTO trials (trial_id, number, study_id, state, datetime_start, datetime_complete) VALUES (:id, :n, :s, :st, :d, :d)",
                "v": "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (:id, 0, :v, :ty)",
                "p": "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json) VALUES (:id, :n, :v, :d)",
                "u": "INSERT INTO trial_user_attributes (trial_id, key, value_json) VALUES (:id, :k, :v)",
                "i": "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type) VALUES (:id, :st, :v, :ty)",
            }
            for key, stmt in sql.items():
                if rows[key]:
                    conn.execute(text(stmt), rows[key])


def check_sqlite(url: str, exported: list[dict[str, Any]], every: int = 500) -> None:
    """Read every `every`-th trial back through Optuna's public API; raise if it differs."""
    from bench import storage

    st = storage.open_storage(url, heartbeat=False)
    for s in exported:
        sid = st.get_study_id_from_name(s["name"])
        for t in s["trials"][::every]:
            got = st.get_trial(st.get_trial_id_from_study_id_trial_number(sid, t["number"]))
            want_state = t["state"].upper()
            if (got.number, got.state.name, got.params, got.user_attrs) != (t["number"], want_state, t["params"], t["user_attrs"]) or \
                    (t["value"] is not None and got.value != t["value"]):
                raise AssertionError(f"{s['name']} trial {t['number']}: Optuna reads back {got} for {t}")
