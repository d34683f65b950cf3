"""Several local worker processes on one study (`bench study --workers N`, `make study WORKERS=N`).

Each worker is a plain `bench worker` process, exactly what runs on other machines; they meet in
the study's storage (the embedded SQLite file serves a few local processes; PostgreSQL serves
many machines) and may share one GPU. The storage URL reaches them through $BENCH_STORAGE, never
on a command line that `ps` shows to other users. While they run, this process prints the
study's one-line status whenever it changes.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Callable

from bench.config import StudyConfig

_log = logging.getLogger(__name__)

STOP_GRACE_S = 30  # after Ctrl-C, how long workers get to record their trial as interrupted


def worker_command(cfg: StudyConfig, variant: str, device: str | None, debug: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "bench"] + (["--debug"] if debug else [])
    cmd += ["worker", cfg.source, "--variant", variant, "--no-progress"] + (["--tensorboard"] if cfg.train.tensorboard else [])
    return cmd + (["--device", device] if device else [])


def run_local(cfg: StudyConfig, variant: str, url: str, n: int, device: str | None,
              status: Callable[[], list[str]], log: Callable[[str], None] = _log.info, poll_s: float = 2.0,
              debug: bool = False) -> list[int]:
    """Start n workers on `variant` (or 'all'), report status until they exit; their exit codes.
    They inherit the environment ($BENCH_RESULTS included) and get `--debug` when this command has it."""
    env = dict(os.environ, BENCH_STORAGE=url)
    procs = [subprocess.Popen(worker_command(cfg, variant, device, debug), env=env) for _ in range(n)]
    log(f"started {n} workers (pids {', '.join(str(p.pid) for p in procs)})")
    shown: list[str] = []
    try:
        while any(p.poll() is None for p in procs):
            lines = status()
            if lines != shown:
                for line in lines:
                    log(line)
                shown = lines
            time.sleep(poll_s)
    except KeyboardInterrupt:
        # Ctrl-C in a terminal reached the workers too (let them finish recording); SIGTERM from
        # a scheduler did not, so pass it on to those still running after a moment.
        _wait(procs, 5.0)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in _wait(procs, STOP_GRACE_S):
            p.kill()
        raise
    for line in status():
        if line not in shown:
            log(line)
    return [p.returncode for p in procs]


def _wait(procs: list[subprocess.Popen], seconds: float) -> list[subprocess.Popen]:
    """Wait up to `seconds` for all; return those still running."""
    deadline = time.monotonic() + seconds
    for p in procs:
        try:
            p.wait(timeout=max(0.01, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    return [p for p in procs if p.poll() is None]
