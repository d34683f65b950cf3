"""The one place that touches Optuna's storage layer.

Embedded default: a SQLite file, results/<study>/optuna.db. SQLite rather than Optuna's journal
file because it goes through the same RDBStorage as PostgreSQL: heartbeats, stale-trial
detection and retry behave identically on a laptop and on a cluster, and optuna-dashboard
reads either. Shared: any SQLAlchemy URL (postgresql://user:pass@host/db) from the study file,
the CLI or $BENCH_STORAGE. Passwords are masked wherever a URL is shown or recorded.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

from .errors import HarnessError

HEARTBEAT_S = 30
GRACE_S = 120


def mask(url: str) -> str:
    """The URL with any password replaced by '***' (safe for logs, results and reports)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def kind(url: str) -> str:
    return url.split(":", 1)[0].split("+", 1)[0]


def open_storage(url: str, heartbeat: bool = True) -> RDBStorage:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        # Several local workers share one file: wait for the lock rather than fail at once.
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    if heartbeat:
        kwargs.update(
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, **kwargs)
    except Exception as e:  # SQLAlchemy/driver errors carry the URL; never echo the password
        msg = mask(str(e).splitlines()[0]) if str(e) else type(e).__name__
        raise HarnessError(f"storage {mask(url)} cannot be opened: {msg}") from None


def study_names(storage: RDBStorage) -> list[str]:
    return [s.study_name for s in optuna.get_all_study_summaries(storage, include_best_trial=False)]
