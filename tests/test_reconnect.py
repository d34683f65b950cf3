"""Issue #10: a database that goes away mid-study. Storage calls retry a lost connection and
carry on (bench/reconnect.py); the real thing, a PostgreSQL restart under a running study, is
`test_postgres_restart_mid_study` (markers `postgres` and `slow`; it restarts the shared server
for a few seconds and always leaves it running)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

import optuna
import pytest
import sqlalchemy.exc

from bench import reconnect, records
from bench.errors import HarnessError

from .conftest import ROOT, tiny_study_text
from .faultkit import cli_env


def _lost() -> sqlalchemy.exc.OperationalError:
    return sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))


def test_a_lost_connection_is_retried_and_the_call_carries_on(tmp_path, monkeypatch, capsys):
    st = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
    failures = iter([_lost(), _lost()])
    real = optuna.storages.RDBStorage.get_all_studies

    def flaky(self, *a, **k):
        e = next(failures, None)
        if e is not None:
            raise e
        return real(self, *a, **k)

    monkeypatch.setattr(optuna.storages.RDBStorage, "get_all_studies", flaky)
    st = reconnect.wrap(st, "postgresql://bench:***@db/x")
    assert st.get_all_studies() == []
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "connection lost" in err[0] and "reconnected" in err[1] and "***" in err[0]


def test_a_connection_that_stays_lost_fails_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("BENCH_STORAGE_RETRY_S", "0.6")
    st = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")

    def down(self, *a, **k):
        raise _lost()

    monkeypatch.setattr(optuna.storages.RDBStorage, "get_all_studies", down)
    st = reconnect.wrap(st, "postgresql://bench:***@db/x")
    t0 = time.monotonic()
    with pytest.raises(HarnessError) as e:
        st.get_all_studies()
    assert time.monotonic() - t0 < 5
    assert "not back after 0.6 s" in str(e.value) and "run the same command again" in str(e.value)


def test_other_errors_are_not_retried(tmp_path, monkeypatch):
    st = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/s.db")
    calls = []

    def broken(self, *a, **k):
        calls.append(1)
        raise sqlalchemy.exc.IntegrityError("INSERT", {}, Exception("duplicate key"))

    monkeypatch.setattr(optuna.storages.RDBStorage, "get_all_studies", broken)
    st = reconnect.wrap(st, "x")
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        st.get_all_studies()
    assert calls == [1]


# ---------------------------------------------------------------- a real PostgreSQL restart

PG = "127.0.0.1:5432"
OUTAGE_S = 2
SECRET = "Pg-restart-secret-9"


def _pg_admin():
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3)
    except psycopg2.OperationalError as e:
        pytest.skip(f"no PostgreSQL server answers at {PG}: {e}")
    conn.autocommit = True
    return conn


def _cluster() -> list[str]:
    if shutil.which("pg_ctlcluster") is None or not os.path.isdir("/etc/postgresql") or os.geteuid() != 0:
        pytest.skip("restarting the server needs pg_ctlcluster and root")
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def _ensure_running(cluster: list[str]) -> None:
    for _ in range(3):
        if subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "5"], capture_output=True).returncode == 0:
            return
        subprocess.run([*cluster, "start"], capture_output=True, timeout=60)
        time.sleep(1)


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_restart_mid_study(tmp_path, shared_cache):
    """The server stops for a few seconds while a trial trains and reports to it: the study carries on to the end,
    nothing is failed or lost, and the storage URL's password appears nowhere."""
    cluster = _cluster()
    admin = _pg_admin()
    db = f"bench_i10_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{db}"')
    url = f"postgresql+psycopg2://postgres:{SECRET}@{PG}/{db}"  # trust auth: the password is ignored, and must not leak
    study = tmp_path / "pgrestart.toml"
    study.write_text(tiny_study_text(name="pgrestart", variants='["wgan"]', trials=2, steps=120, checkpoint_every=20))
    env = cli_env(tmp_path / "results", shared_cache, BENCH_STORAGE=url, BENCH_STORAGE_RETRY_S="90",
                  BENCH_HEARTBEAT_S="1")  # a storage call every second while a trial runs: the outage is met at once
    log = tmp_path / "results" / "pgrestart" / "wgan" / "trial-0000" / "metrics.jsonl"
    p = subprocess.Popen([sys.executable, "-m", "bench", "study", str(study), "--variant", "wgan"], env=env, cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err_lines: list[str] = []
    reader = threading.Thread(target=lambda: err_lines.extend(iter(p.stderr.readline, "")), daemon=True)
    reader.start()  # stderr is read while the worker runs: the outage line is the condition to wait for
    try:
        deadline = time.monotonic() + 300
        while not (log.is_file() and b'"train"' in log.read_bytes()):  # inside the trial, its heartbeat running
            assert p.poll() is None, (p.communicate(), err_lines)
            assert time.monotonic() < deadline
            time.sleep(0.05)
        stop = subprocess.run([*cluster, "stop", "-m", "fast"], capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stderr
        # The server stays down until the worker has met the outage (a heartbeat, a report or the next
        # trial fails and it says so), however slow the machine; then it comes back within the retry budget.
        deadline = time.monotonic() + 180
        while not any("connection lost" in line for line in err_lines):
            assert p.poll() is None, ("the study ended while the server was down", err_lines)
            assert time.monotonic() < deadline, ("the worker never touched the storage while it was down", err_lines)
            time.sleep(0.05)
        time.sleep(OUTAGE_S)  # a gap after the first failed call, so that the retry loop runs more than once
        start = subprocess.run([*cluster, "start"], capture_output=True, text=True, timeout=120)
        assert start.returncode == 0, start.stderr
        out = p.stdout.read()
        p.wait(timeout=600)
        reader.join(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
        _ensure_running(cluster)
    err = "".join(err_lines)
    assert p.returncode == 0, err
    assert "Traceback" not in err and SECRET not in out + err
    assert "connection lost" in err and "reconnected after" in err, err  # the outage was met, and ridden out
    st = optuna.storages.RDBStorage(url)
    trials = optuna.load_study(study_name="pgrestart:wgan", storage=st).get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"], [(t.state, t.user_attrs.get("reason")) for t in trials]
    for path in (tmp_path / "results").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    for path in (tmp_path / "results").rglob("*.jsonl"):
        list(records.read_jsonl(path))
    st.engine.dispose()
    admin = _pg_admin()
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
