"""Many workers on one study, with real processes, on the embedded SQLite storage and on the real
PostgreSQL server (a database created and dropped here; skipped with the reason when no server
answers): the budget is filled exactly, a killed worker's trial is rerun, an interrupted trial is
re-queued and a rerun resumes it, a pruned trial is recorded as pruned. The password of a
storage URL appears nowhere in results, logs or the storage.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest

from bench import storage
from bench.config import load_study
from bench.study import budget as B
from bench.trial.train import trial_seeds

from .conftest import ROOT, run_cli, sigint_default

PG = dict(host="127.0.0.1", port=5432, user="postgres")
PASSWORD = "pw-Never-Shown-7"  # the server trusts local users and ignores it; it must never be written
# Short heartbeats so that a killed worker's trial is found stale within seconds; the grace stays
# long enough that a live worker on a busy 2-core machine is not taken for dead.
FAST = {"BENCH_HEARTBEAT_S": "1", "BENCH_GRACE_S": "6"}
_OPEN: dict[str, optuna.storages.RDBStorage] = {}  # storages the tests read, by URL


@pytest.fixture
def pg_url():
    try:
        import psycopg2

        admin = psycopg2.connect(dbname="postgres", connect_timeout=3, **PG)
    except Exception as e:  # no server here: say why
        pytest.skip(f"no PostgreSQL server answers on {PG['host']}:{PG['port']}: {str(e).strip().splitlines()[0]}")
    admin.autocommit = True
    db = f"bench_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as c:
        c.execute(f"CREATE DATABASE {db}")
    url = f"postgresql+psycopg2://{PG['user']}:{PASSWORD}@{PG['host']}:{PG['port']}/{db}"
    try:
        yield url
    finally:
        if url in _OPEN:
            _OPEN.pop(url).engine.dispose()
        with admin.cursor() as c:
            c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        admin.close()


def storage_url(kind: str, request, tmp_path: Path) -> str:
    if kind == "postgres":
        return request.getfixturevalue("pg_url")
    (tmp_path / "results").mkdir(exist_ok=True)
    return f"sqlite:///{tmp_path / 'results' / 'study.db'}"


def trials_of(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    if url not in _OPEN:  # opened once: the tests poll, and opening checks the schema each time
        _OPEN[url] = storage.open_storage(url, heartbeat=False)
    return optuna.load_study(study_name=name, storage=_OPEN[url]).get_trials(deepcopy=True)


_STARTED: list[subprocess.Popen] = []  # every process a test starts here; none may outlive its test


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    """A failed test left its workers waiting on the study for an hour, taking CPU from every later
    test: kill what is still running (with its process group, for `bench study --workers`)."""
    yield
    while _STARTED:
        p = _STARTED.pop()
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(p.pid) == p.pid:  # its own group (start_new_session): its workers too
                    os.killpg(p.pid, signal.SIGKILL)
                else:
                    p.kill()
            p.wait(30)


def start_worker(path: Path, env: dict, log: Path, *extra: str) -> subprocess.Popen:
    out = open(log, "ab")
    p = subprocess.Popen([sys.executable, "-m", "bench", "worker", str(path), "--variant", "ns_gan", "--no-progress", *extra],
                         env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, preexec_fn=sigint_default)
    _STARTED.append(p)
    return p


def wait_for_trial_in(url: str, name: str, procs: list[subprocess.Popen], timeout: float = 120) -> tuple[subprocess.Popen, int]:
    """A worker of `procs` that is inside a trial now (running, its folder made): (process, trial number)."""
    pids = {str(p.pid): p for p in procs}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for t in trials_of(url, name):
            pid = str(t.user_attrs.get("worker", "")).rsplit(":", 1)[-1]
            if t.state == optuna.trial.TrialState.RUNNING and pid in pids and "trial_dir" in t.user_attrs and pids[pid].poll() is None:
                return pids[pid], t.number
        time.sleep(0.3)
    pytest.fail("no worker started a trial in time")


def counted_finished(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in trials if B.counts(t) and t.state.is_finished()]


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_four_workers_fill_the_budget_exactly_through_a_kill_and_an_interrupt(kind, request, env, tiny_study, tmp_path):
    url = storage_url(kind, request, tmp_path)
    env = {**env, **FAST, "BENCH_STORAGE": url}
    path = tiny_study(name="par", trials=12, steps=20, checkpoint_every=20)
    r = run_cli("study", path, "--variant", "ns_gan", "--create-only", env=env)
    assert r.returncode == 0 and "par:ns_gan: 0/12 done" in r.stdout, r.stderr
    logs = [tmp_path / f"worker-{i}.log" for i in range(5)]
    procs = [start_worker(path, env, logs[i]) for i in range(4)]

    victim, lost_number = wait_for_trial_in(url, "par:ns_gan", procs)
    victim.send_signal(signal.SIGKILL)  # kill -9 in the middle of a trial
    assert victim.wait(30) == -signal.SIGKILL
    stopped, interrupted_number = wait_for_trial_in(url, "par:ns_gan", [p for p in procs if p is not victim])
    stopped.send_signal(signal.SIGINT)  # Ctrl-C in the middle of a trial
    assert stopped.wait(60) == 130
    procs.append(start_worker(path, env, logs[4]))  # the rerun after Ctrl-C
    for p in procs:
        if p not in (victim, stopped):
            assert p.wait(300) == 0, Path(logs[procs.index(p)]).read_text()[-3000:]

    trials = trials_of(url, "par:ns_gan")
    by_number = {t.number: t for t in trials}
    done = counted_finished(trials)
    assert len(done) == 12 and all(B.outcome(t) == "complete" for t in done)
    assert len({t.number for t in done}) == 12
    assert len({t.user_attrs["origin"] for t in done}) == 12  # no sample ran twice to the end
    # The killed worker's trial went stale, was failed and rerun from its parameters and seeds.
    lost = by_number[lost_number]
    assert B.outcome(lost) == "lost" and lost.state == optuna.trial.TrialState.FAIL
    (retry,) = [t for t in done if t.system_attrs.get("failed_trial") == lost_number]
    assert retry.params == lost.params and retry.user_attrs["seeds"] == lost.user_attrs["seeds"]
    # The interrupted trial is recorded as such, re-queued, and finished by another worker.
    stopped_trial = by_number[interrupted_number]
    assert B.outcome(stopped_trial) == "interrupted"
    (again,) = [t for t in done if t.user_attrs["origin"] == stopped_trial.user_attrs["origin"]]
    assert again.number != interrupted_number and again.user_attrs["hparams"] == stopped_trial.user_attrs["hparams"]
    assert again.user_attrs["seeds"] == stopped_trial.user_attrs["seeds"]
    # Every trial records its spend, device, sampler and pruner; its folder says the same.
    for t in done:
        assert t.user_attrs["steps"] == 20 and t.user_attrs["seconds"] > 0 and t.user_attrs["device"] == "cpu"
        assert (t.user_attrs["sampler"], t.user_attrs["pruner"]) == ("random", "none")
        cfg = json.loads((Path(t.user_attrs["trial_dir"]) / "config.json").read_text())
        assert (cfg["trial"], cfg["origin"], cfg["seeds"]) == (t.number, t.user_attrs["origin"], t.user_attrs["seeds"])
    status = run_cli("status", path, "--variant", "ns_gan", env=env)
    assert status.returncode == 0 and "par:ns_gan: 12/12 done (budget spent) · 0 running · 0 failed" in status.stdout
    assert " lost" in status.stdout and "1 interrupted" in status.stdout
    if kind == "postgres":
        _assert_password_nowhere(tmp_path, trials, [status.stdout, status.stderr, r.stdout, r.stderr])


def _assert_password_nowhere(tmp_path: Path, trials: list[optuna.trial.FrozenTrial], outputs: list[str]) -> None:
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert PASSWORD.encode() not in f.read_bytes(), f
    for t in trials:
        assert PASSWORD not in json.dumps([t.user_attrs, t.system_attrs], default=str)
    assert all(PASSWORD not in o for o in outputs)


def test_local_workers_stop_on_ctrl_c_and_the_rerun_resumes(env, tiny_study, tmp_path):
    """`make study WORKERS=2`: two local workers on the embedded storage; Ctrl-C to the whole
    process group (as a terminal sends it) records running trials as interrupted; the same
    command again finishes the budget with those trials' parameters and seeds."""
    env = {**env, **FAST}
    path = tiny_study(name="loc", trials=4, steps=20, checkpoint_every=20)
    url = f"sqlite:///{tmp_path / 'results' / 'loc' / 'optuna.db'}"
    parent = subprocess.Popen([sys.executable, "-m", "bench", "study", str(path), "--variant", "ns_gan", "--workers", "2"],
                              env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                              preexec_fn=sigint_default)
    _STARTED.append(parent)
    def in_a_trial() -> bool:
        try:
            return any(t.state == optuna.trial.TrialState.RUNNING and "trial_dir" in t.user_attrs for t in trials_of(url, "loc:ns_gan"))
        except KeyError:  # the study is not created yet
            return False

    deadline = time.monotonic() + 300
    while not (Path(url[len("sqlite:///"):]).exists() and in_a_trial()):
        assert parent.poll() is None, parent.communicate()[0]
        assert time.monotonic() < deadline, "no worker started a trial in time"
        time.sleep(0.3)
    os.killpg(parent.pid, signal.SIGINT)
    out, _ = parent.communicate(timeout=120)
    assert parent.returncode == 130, out
    assert "started 2 workers" in out and "interrupted; run the same command again to resume" in out
    stopped = [t for t in trials_of(url, "loc:ns_gan") if B.outcome(t) == "interrupted"]
    assert stopped and all(t.user_attrs.get("steps") is not None for t in stopped)

    r = run_cli("study", path, "--variant", "ns_gan", "--no-progress", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    trials = trials_of(url, "loc:ns_gan")
    done = counted_finished(trials)
    assert len(done) == 4 and len({t.user_attrs["origin"] for t in done}) == 4
    assert any("seeds" in s.user_attrs for s in stopped)  # the one seen inside a trial above
    for s in stopped:
        (again,) = [t for t in done if t.user_attrs["origin"] == s.user_attrs["origin"]]
        assert again.params == s.params
        # The other worker may have been stopped before its trial recorded seeds (Ctrl-C reaches
        # both at once, wherever they are); seeds follow the origin, so its rerun's are those it would have had.
        assert again.user_attrs["seeds"] == s.user_attrs.get("seeds", trial_seeds(load_study(str(path)).study.seed, s.user_attrs["origin"]))


def test_a_pruned_trial_is_recorded_as_pruned(env, tiny_study, tmp_path, monkeypatch):
    """Successive halving: an earlier trial reached FID 0 at the first checkpoint, so a real
    trial (FID > 0) is stopped there and recorded as pruned, with the steps it spent."""
    from bench import report
    from bench.config import load_study
    from bench.gan.variants import VARIANTS
    from bench.study import runner

    path = tiny_study(name="prune", trials=2, steps=10, checkpoint_every=5, sampler="random")
    path.write_text(path.read_text().replace('sampler = "random"', 'sampler = "random"\npruner = "successive_halving"'))
    cfg = load_study(str(path))
    url = storage.resolve_url(cfg)
    study = runner.open_study(cfg, VARIANTS["ns_gan"], url, create=True)
    study.add_trial(optuna.trial.create_trial(value=0.0, intermediate_values={5: 0.0, 10: 0.0}, system_attrs={"completed_rung_0": 0.0},
                                              user_attrs={"outcome": "complete", "steps": 10, "seconds": 1.0}))
    lines: list[str] = []
    runner.run_worker(cfg, "ns_gan", url, log=lines.append, progress=False)
    (t,) = [t for t in trials_of(url, "prune:ns_gan") if t.number == 0]
    assert t.state == optuna.trial.TrialState.PRUNED and B.outcome(t) == "pruned"
    assert t.user_attrs["steps"] == 5 and t.user_attrs["pruner"] == "successive_halving" and t.intermediate_values.keys() == {5}
    assert "trial 0: pruned" in lines[0] and "at D step 5" in lines[0]
    best = report.per_trial(report.load(cfg, storage_url=url))
    assert best.set_index("trial").loc[0, "state"] == "pruned"
    assert report.summary_table(best).loc[0, "pruned"] == 1
