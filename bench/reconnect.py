"""Storage calls that survive a database restart: retry on a lost connection, then carry on.

A study runs for days against a shared PostgreSQL; the server will be restarted (upgrades,
failover) while workers train. The engine's `pool_pre_ping` replaces a dead pooled connection
when one is checked out, but a call made while the server is down, or on a connection that died
mid-query, raises `sqlalchemy.exc.OperationalError` (Optuna wraps some as `StorageInternalError`).
Every call of the storage API is therefore retried on those errors with a growing pause, for up to
$BENCH_STORAGE_RETRY_S seconds (120), telling the user once per outage on stderr; a call that
still fails raises `HarnessError` naming the storage (exit 1), and a rerun resumes.

A retried write may, rarely, have been committed just before the connection dropped; the only
call for which that matters (creating a trial) then leaves one extra trial that never gets a
heartbeat, which the stale-trial recovery fails and re-queues like a dead worker's.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable

import sqlalchemy.exc

from bench.errors import ConfigError, HarnessError

_log = logging.getLogger(__name__)

RETRY_S = 120
# The storage API (optuna.storages.BaseStorage and the RDB extras the harness and Optuna call).
METHODS = (
    "create_new_study", "delete_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "set_trial_param", "get_trial_id_from_study_id_trial_number",
    "get_trial_number_from_id", "get_trial_param", "set_trial_state_values", "set_trial_intermediate_value",
    "set_trial_user_attr", "set_trial_system_attr", "get_trial", "get_all_trials", "get_n_trials", "get_best_trial",
    "get_trial_params", "get_trial_user_attrs", "get_trial_system_attrs", "record_heartbeat", "_get_stale_trial_ids",
    "check_trial_is_updatable",
)


def retry_seconds() -> float:
    raw = os.environ.get("BENCH_STORAGE_RETRY_S", "")
    if not raw:
        return RETRY_S
    try:
        value = float(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigError(f"$BENCH_STORAGE_RETRY_S = {raw!r}: expected a number of seconds >= 0")
    return value


def is_connection_error(e: BaseException) -> bool:
    """A lost or refused connection (worth retrying), not a bad query or a constraint."""
    for err in (e, e.__cause__, e.__context__):
        if isinstance(err, sqlalchemy.exc.OperationalError):
            return True
        if isinstance(err, sqlalchemy.exc.DBAPIError) and err.connection_invalidated:
            return True
    return False


class _Outage:
    """Tell the user once per outage, not once per call or per thread."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.since: float | None = None

    def start(self, where: str, e: BaseException, budget: float) -> None:
        with self.lock:
            if self.since is None:
                self.since = time.monotonic()
                first = str(getattr(e, "orig", None) or e).strip().splitlines()
                _log.warning(f"bench: storage {where}: connection lost ({first[0][:160] if first else type(e).__name__}); "
                             f"retrying for up to {budget:g} s")

    def end(self, where: str) -> None:
        with self.lock:
            if self.since is not None:
                _log.warning(f"bench: storage {where}: reconnected after {time.monotonic() - self.since:.1f} s")
                self.since = None


def call(fn: Callable[[], Any], where: str, outage: _Outage, budget: float) -> Any:
    deadline, pause = time.monotonic() + budget, 0.25
    while True:
        try:
            out = fn()
        except Exception as e:
            if not is_connection_error(e):
                raise
            if time.monotonic() + pause > deadline:
                first = str(getattr(e, "orig", None) or e).strip().splitlines()
                raise HarnessError(f"storage {where}: connection lost and not back after {budget:g} s "
                                   f"({first[0][:160] if first else type(e).__name__}); run the same command again "
                                   "when the database is up (set $BENCH_STORAGE_RETRY_S to wait longer)") from None
            outage.start(where, e, budget)
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
            continue
        outage.end(where)
        return out


def wrap(storage: Any, where: str) -> Any:
    """Make every storage API call of `storage` (an Optuna RDBStorage) retry on a lost connection.
    `where` is the masked URL, for messages."""
    budget = retry_seconds()
    if budget == 0:
        return storage
    outage = _Outage()
    base = type(storage)

    def make(name: str) -> Callable[..., Any]:
        original = getattr(base, name)

        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            return call(lambda: original(self, *args, **kwargs), where, outage, budget)

        method.__name__ = name
        return method

    cls = type(f"Reconnecting{base.__name__}", (base,), {n: make(n) for n in METHODS if hasattr(base, n)})
    storage.__class__ = cls
    return storage
