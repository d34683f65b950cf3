"""The one place that touches Optuna's storage layer.

Embedded default: a SQLite file, results/<study>/optuna.db. SQLite rather than Optuna's journal
file because it goes through the same RDBStorage as PostgreSQL: heartbeats, stale-trial
detection and retry behave identically on a laptop and on a cluster, and optuna-dashboard
reads either. Shared: any SQLAlchemy URL (postgresql://user:pass@host/db) from the study file,
the CLI or $BENCH_STORAGE. Passwords are masked wherever a URL is shown or recorded.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Callable

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from .config import mask_url
from .errors import HarnessError

HEARTBEAT_S = 30
GRACE_S = 120


def mask(url: str) -> str:
    """The URL with any password replaced by '***' (safe for logs, results and reports)."""
    return mask_url(url)


def kind(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def open_storage(url: str, heartbeat: bool = True) -> RDBStorage:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local workers share one file: wait for the lock rather than fail at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # the callback warns too: keep errors one line (issue #10)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if heartbeat:
                kwargs.update(
                    heartbeat_interval=HEARTBEAT_S,
                    grace_period=GRACE_S,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
                )
            return RDBStorage(url, **kwargs)
    except Exception as e:  # SQLAlchemy/driver errors carry the URL; never echo the password
        msg = mask(str(e).splitlines()[0]) if str(e) else type(e).__name__
        raise HarnessError(f"storage {mask(url)} cannot be opened: {msg}") from None


def study_names(storage: RDBStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


# --- Bulk read for reports (issue #7) ------------------------------------------------------------
# `Study.get_trials` builds every FrozenTrial through the ORM: about 2 s per 1,000 trials on these
# CPUs. Reports read whole studies, so `export_studies` runs five plain SELECTs on Optuna's RDB
# tables instead (more than ten times faster) and falls back to the public API whenever that schema
# is not the one read here. tests/test_report.py checks both paths give the same records.

_STATE = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "fail", "RUNNING": "running", "WAITING": "waiting"}
_INF = {"INF_POS": math.inf, "INF_NEG": -math.inf, "NAN": math.nan}


def harness_studies(st: RDBStorage) -> list[str]:
    """Names of the Optuna studies in a storage (cheap: no per-study trial counts)."""
    return [s.study_name for s in st.get_all_studies()]


def export_studies(url: str, keep: Callable[[str], bool] = lambda name: True, fast: bool = True) -> list[dict[str, Any]]:
    """Every study whose name `keep` accepts, as {"name", "user_attrs", "trials"}; a trial is
    {"number", "state" (complete, pruned, fail, running, waiting), "value", "params" (external
    values), "distributions" (JSON), "user_attrs", "intermediate" ({step: value})}."""
    st = open_storage(url, heartbeat=False)
    names = [n for n in harness_studies(st) if keep(n)]
    if fast:
        try:
            return _export_sql(st, names)
        except Exception:  # another schema or dialect: the slow path is always right
            pass
    out = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=st)
        trials = [{
            "number": t.number, "state": _STATE[t.state.name], "value": t.value, "params": dict(t.params),
            "distributions": {k: optuna.distributions.distribution_to_json(d) for k, d in t.distributions.items()},
            "user_attrs": dict(t.user_attrs), "intermediate": dict(t.intermediate_values),
        } for t in study.get_trials(deepcopy=False)]
        out.append({"name": name, "user_attrs": dict(study.user_attrs), "trials": trials})
    return out


def _export_sql(st: RDBStorage, names: list[str]) -> list[dict[str, Any]]:
    import json

    from sqlalchemy import bindparam, text

    def q(sql: str, **params: Any) -> list[Any]:
        stmt = text(sql)
        for key, value in params.items():
            if isinstance(value, list):
                stmt = stmt.bindparams(bindparam(key, expanding=True))
        return conn.execute(stmt, params).fetchall()

    with st.engine.connect() as conn:
        if not names:
            return []
        found = {name: sid for sid, name in q("SELECT study_id, study_name FROM studies WHERE study_name IN :n", n=names)}
        studies = {found[name]: name for name in names}
        ids = list(studies)
        sattrs: dict[int, dict[str, Any]] = {sid: {} for sid in ids}
        for sid, key, value in q("SELECT study_id, key, value_json FROM study_user_attributes WHERE study_id IN :s", s=ids):
            sattrs[sid][key] = json.loads(value)
        trials: dict[int, dict[str, Any]] = {}
        per_study: dict[int, list[dict[str, Any]]] = {sid: [] for sid in ids}
        for tid, sid, number, state in q("SELECT trial_id, study_id, number, state FROM trials WHERE study_id IN :s ORDER BY number", s=ids):
            t = {"number": number, "state": _STATE[str(getattr(state, "name", state))], "value": None, "params": {},
                 "distributions": {}, "user_attrs": {}, "intermediate": {}}
            trials[tid] = t
            per_study[sid].append(t)
        join = "JOIN trials t ON t.trial_id = x.trial_id WHERE t.study_id IN :s"
        for tid, value, vtype in q(f"SELECT x.trial_id, x.value, x.value_type FROM trial_values x {join} AND x.objective = 0", s=ids):
            trials[tid]["value"] = _INF.get(str(getattr(vtype, "name", vtype)), value)
        dists: dict[str, Any] = {}
        for tid, name, value, dist in q(f"SELECT x.trial_id, x.param_name, x.param_value, x.distribution_json FROM trial_params x {join}", s=ids):
            if dist not in dists:
                dists[dist] = optuna.distributions.json_to_distribution(dist)
            trials[tid]["params"][name] = dists[dist].to_external_repr(value)
            trials[tid]["distributions"][name] = dist
        for tid, key, value in q(f"SELECT x.trial_id, x.key, x.value_json FROM trial_user_attributes x {join}", s=ids):
            trials[tid]["user_attrs"][key] = json.loads(value)
        for tid, step, value, vtype in q(f"SELECT x.trial_id, x.step, x.intermediate_value, x.intermediate_value_type FROM trial_intermediate_values x {join}", s=ids):
            trials[tid]["intermediate"][step] = _INF.get(str(getattr(vtype, "name", vtype)), value)
    return [{"name": studies[sid], "user_attrs": sattrs[sid], "trials": per_study[sid]} for sid in ids]
