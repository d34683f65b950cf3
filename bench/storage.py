"""The one place that touches Optuna's storage layer.

Embedded default: a SQLite file, results/<study>/optuna.db. SQLite rather than Optuna's journal
file because it goes through the same RDBStorage as PostgreSQL: heartbeats, stale-trial
detection and retry behave identically on a laptop and on a cluster, and optuna-dashboard
reads either. Shared: any SQLAlchemy URL (postgresql://user:pass@host/db) from the study file,
the CLI or $BENCH_STORAGE. Passwords are masked wherever a URL is shown or recorded.

Crash recovery: every running trial sends a heartbeat every BENCH_HEARTBEAT_S seconds (30); a
trial silent for BENCH_GRACE_S (120) is failed by the next worker that looks and re-queued with
the same parameters by `RequeueStale` (short settings are for tests). It marks retries as
Optuna's RetryHeartbeatStaleTrialCallback does (`failed_trial`, `retry_history`, `max_retry`),
but queues the parameters as fixed values, as `enqueue_trial` does: Optuna's callback rebuilds
the trial with its distributions, which raises for a paper default outside the narrow range
(wgan's learning rate 5e-5 < 1e-4) and takes the worker that found the stale trial down with it.

SQLite: every transaction begins IMMEDIATE (takes the write lock at once). Optuna pops a queued
trial by reading its state, then writing RUNNING; SQLite ignores SELECT ... FOR UPDATE, so without
this two local workers could both pop one trial (PostgreSQL locks the row and needs nothing).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
import warnings
from typing import Any, Callable, Iterator

import optuna
import sqlalchemy
from optuna.storages import RDBStorage

from bench import reconnect, records
from bench.errors import ConfigError, HarnessError

HEARTBEAT_S = 30
GRACE_S = 120
MAX_RETRY = 3  # a trial whose worker dies this many times is not re-queued again


def _seconds(var: str, default: int) -> int:
    raw = os.environ.get(var, "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"${var} = {raw!r}: expected a whole number of seconds > 0")
    return int(raw)


def heartbeat_s() -> int:
    return _seconds("BENCH_HEARTBEAT_S", HEARTBEAT_S)


def grace_s() -> int:
    return _seconds("BENCH_GRACE_S", GRACE_S)


@contextlib.contextmanager
def optuna_log_level(level: int) -> Iterator[None]:
    """Optuna's log level for one block, then the caller's again. The level of a `bench` command is
    set once, by its entry point (`cli.configure`); no module sets it when imported."""
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(level)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def mask(url: str) -> str:
    """The URL with any password replaced by '***': what records, logs, messages and reports may show."""
    url = re.sub(r"(://[^:/@]*:).*@", r"\1***@", url)  # greedy: a password may hold '@' or '/'
    return re.sub(r"(?i)([?&](?:password|passwd|pwd)=)[^&\s]*", r"\1***", url)  # libpq's ?password=


def _given_url(cli_url: str | None, configured: str = "") -> str:
    """--storage, else $BENCH_STORAGE, else the study file's `[study] storage` ('' when none is given)."""
    return cli_url or os.environ.get("BENCH_STORAGE") or configured


def url_of(study: str, cli_url: str | None = None, configured: str = "") -> str:
    """The storage URL of a study by name, as resolve_url chooses it, without checking or making anything:
    the given one, else the embedded SQLite file under results/<study>/."""
    return _given_url(cli_url, configured) or records.default_storage_url(study)


def resolve_url(cfg: Any, cli_url: str | None = None, create: bool = True) -> str:
    """The storage URL of a study config: --storage, else $BENCH_STORAGE, else `[study] storage`, else the
    embedded SQLite file under results/<study>/; that folder is made only when `create` (reports never make one)."""
    url = _given_url(cli_url, cfg.study.storage)
    if not url:
        sdir = records.study_dir(cfg.name)
        if create:
            records.ensure_writable(sdir)
        elif not records.storage_file(sdir).is_file():
            raise HarnessError(f"study {cfg.name!r} has no results yet ({records.storage_file(sdir)} does not exist); "
                               f"run `bench study {cfg.name} --variant <name>` first, or pass --storage")
        url = records.default_storage_url(cfg.name)
    return url


def kind(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def with_driver(url: str) -> str:
    """postgresql:// with the driver the harness installs (psycopg2); SQLAlchemy 2.1 defaults to psycopg 3."""
    return "postgresql+psycopg2://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


def open_storage(url: str, heartbeat: bool = True) -> RDBStorage:
    url = with_driver(url)
    kwargs: dict[str, Any] = {}
    sqlite = url.startswith("sqlite")
    if sqlite:
        # Several local workers share one file: wait for the lock rather than fail at once; the
        # driver stays out of transaction control so that _begin_immediate can take it.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60, "isolation_level": None}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if heartbeat:  # outside the try: a bad $BENCH_HEARTBEAT_S is a ConfigError (exit 2), not an unopenable storage
        kwargs.update(heartbeat_interval=heartbeat_s(), grace_period=grace_s(), heartbeat_stale_trial_callback=RequeueStale(MAX_RETRY))
    try:
        st = _rdb_storage(url, kwargs)
    except Exception as e:  # SQLAlchemy/driver errors carry the URL; never echo the password
        msg = mask(str(e).splitlines()[0]) if str(e) else type(e).__name__
        raise HarnessError(f"storage {mask(url)} cannot be opened: {msg}") from None
    if sqlite:
        sqlalchemy.event.listen(st.engine, "begin", _begin_immediate)
    else:  # a database server may restart under a running study: retry a lost connection (issue #10)
        st = reconnect.wrap(st, mask(url))
    return st


SCHEMA_RACE = ("UNIQUE constraint failed: alembic_version", "already exists", "duplicate key value")


def _rdb_storage(url: str, kwargs: dict[str, Any], attempts: int = 5) -> RDBStorage:
    """RDBStorage(url), again when another process was creating the same new storage's tables at
    the same moment (both see no schema, the second insert of the schema version fails): the
    tables exist by then, so the next attempt opens them. Any other error is raised at once."""
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():  # the callback warns too: keep errors one line (issue #10)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, **kwargs)
        except Exception as e:
            if attempt == attempts - 1 or not any(m in str(e) for m in SCHEMA_RACE):
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def requeue(study: optuna.Study, t: optuna.trial.FrozenTrial, retry: bool) -> None:
    """Queue a copy of trial `t`: the same parameter values (fixed, as `enqueue_trial` queues them,
    so a paper default outside the search range survives) and the paper-default mark.

    `retry`: the copy reruns `t` (user attribute `retry_of`; Optuna's `failed_trial`, the first
    trial of the chain, whose seeds every rerun uses, and `retry_history`). Otherwise `t` was
    never started and the copy simply takes its place in the queue."""
    system: dict[str, Any] = {"fixed_params": {**t.system_attrs.get("fixed_params", {}), **t.params}}
    for key in ("failed_trial", "retry_history"):
        if key in t.system_attrs:
            system[key] = t.system_attrs[key]
    user = {k: t.user_attrs[k] for k in ("paper_default", "retry_of") if k in t.user_attrs}
    if retry:
        system.setdefault("failed_trial", t.number)
        system["retry_history"] = [*system.get("retry_history", []), t.number]
        user["retry_of"] = t.number
    study.add_trial(optuna.create_trial(state=optuna.trial.TrialState.WAITING, user_attrs=user, system_attrs=system))


def origin(t: Any) -> int:
    """The trial whose seeds a trial uses: the first of its chain of reruns, else itself."""
    return int(t.system_attrs.get("failed_trial", t.number))


class RequeueStale:
    """Heartbeat-stale trial callback: re-queue the lost trial unless it was lost max_retry times."""

    def __init__(self, max_retry: int):
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        if len(t.system_attrs.get("retry_history", [])) < self.max_retry:
            requeue(study, t, retry=True)


def fail_stale(study: optuna.Study) -> None:
    """Fail the running trials whose worker stopped sending heartbeats, and re-queue them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def study_names(storage: RDBStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]


def stored_config(url: str, study: str) -> dict[str, Any] | None:
    """The resolved configuration recorded with a harness study (user attribute `config` of its
    Optuna studies `<study>:<variant>`), or None when the storage holds none of it."""
    st = open_storage(url, heartbeat=False)
    try:
        for s in st.get_all_studies():
            if s.study_name.split(":", 1)[0] == study and isinstance(s.user_attrs.get("config"), dict):
                return s.user_attrs["config"]
        return None
    finally:
        st.engine.dispose()


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
