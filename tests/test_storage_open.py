"""Opening a storage that another process is creating at the same moment (the Ctrl-C workers test
polled a new SQLite file while `bench study` made its tables, and the study failed with
"UNIQUE constraint failed: alembic_version"): the opener tries again once the tables exist."""

from __future__ import annotations

import sqlite3
import threading

import optuna
import pytest

from bench import storage
from bench.errors import HarnessError


def test_many_openers_of_one_new_sqlite_file_all_succeed(tmp_path):
    for k in range(4):
        url = f"sqlite:///{tmp_path / f'new-{k}.db'}"
        barrier, errors = threading.Barrier(6), []

        def open_it() -> None:
            barrier.wait()
            try:
                optuna.create_study(study_name="s", storage=storage.open_storage(url, heartbeat=False), load_if_exists=True)
            except Exception as e:  # collected: an exception in a thread would not fail the test
                errors.append(repr(e))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(optuna.load_study(study_name="s", storage=url).get_trials()) == 0


def test_the_schema_race_is_retried_and_other_errors_are_not(monkeypatch):
    calls = []
    real = storage.RDBStorage

    def racing(url, **kw):
        calls.append(url)
        if len(calls) == 1:
            raise sqlite3.IntegrityError("(sqlite3.IntegrityError) UNIQUE constraint failed: alembic_version.version_num")
        return real(url, **kw)

    monkeypatch.setattr(storage, "RDBStorage", racing)
    monkeypatch.setattr(storage.time, "sleep", lambda s: None)
    storage.open_storage("sqlite://", heartbeat=False)
    assert len(calls) == 2

    def broken(url, **kw):
        calls.append(url)
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(storage, "RDBStorage", broken)
    calls.clear()
    with pytest.raises(HarnessError, match="cannot be opened: unable to open database file"):
        storage.open_storage("sqlite:////nonexistent/dir/x.db", heartbeat=False)
    assert len(calls) == 1
