"""A worker on several variants takes every variant's open trials before it waits on any: with
--workers 2 and --variant all, the second worker must not idle on the first one's last trial of a
variant while the next variant has trials to run (seen in the seed-figures case study)."""

from __future__ import annotations

import threading
import time
import tomllib

import optuna
import pytest

from bench.config import parse_study
from bench.gan.variants import VARIANTS
from bench.study import runner

from .conftest import tiny_study_text


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_worker_runs_the_next_variant_while_another_workers_trial_runs(tmp_path, monkeypatch, shared_cache):
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("BENCH_CACHE", str(shared_cache))
    monkeypatch.setenv("BENCH_GRACE_S", "3600")  # the other worker's trial below is running, not lost
    cfg = parse_study(tomllib.loads(tiny_study_text(variants='["ns_gan", "wgan"]')), "tiny.toml")
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    studies = {v: runner.open_study(cfg, VARIANTS[v], url, create=True) for v in ("ns_gan", "wgan")}
    other = studies["ns_gan"].ask()  # another worker holds ns_gan's only trial
    logs: list[str] = []
    worker = threading.Thread(target=runner.run_variants, args=(cfg, ["ns_gan", "wgan"], url),
                              kwargs={"log": logs.append, "progress": False, "wait": True}, daemon=True)
    worker.start()
    # Wait for the condition, not a clock: wgan's trial finishes while ns_gan's is still running.
    # (Before, the worker waited on ns_gan's running trial until it ended or went stale.)
    deadline = time.monotonic() + 600  # a bound for a broken worker, far above the trial's seconds
    while time.monotonic() < deadline and worker.is_alive() and not any(t.state.is_finished() for t in studies["wgan"].get_trials(deepcopy=False)):
        worker.join(0.5)
    (done,) = [t for t in studies["wgan"].get_trials(deepcopy=False)]
    assert done.state == optuna.trial.TrialState.COMPLETE
    assert studies["ns_gan"].get_trials(deepcopy=False)[0].state == optuna.trial.TrialState.RUNNING
    assert worker.is_alive()  # it stays, to rerun ns_gan's trial should its worker die ...
    studies["ns_gan"].tell(other, 1.0)  # ... and leaves once that trial has ended
    worker.join(120)
    assert not worker.is_alive(), logs
