"""Helpers of issue #10's suite: many CLI runs in one process, results snapshots, the error contract."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .cli_batch import changed, tree_digest  # noqa: F401  (re-exported for the tests)
from .conftest import ROOT


class Payload:
    """A checkpoint that, unpickled without weights_only, makes a folder: proof that it would run code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        import os

        return (os.makedirs, (self.marker,))


def cli_env(results: Path, cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run: its own results, the session's cache, no storage override."""
    env = {k: v for k, v in os.environ.items() if k not in ("BENCH_STORAGE", "BENCH_DEBUG")}
    env.update(BENCH_RESULTS=str(results), BENCH_CACHE=str(cache), PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    env.update(extra)
    return env


def run_batch(cases: list[dict[str, Any]], env: dict[str, str], timeout: int = 600) -> list[dict[str, Any]]:
    """Run [{"argv": [...], "env": {...}}, ...] through `bench.cli.main` in one fresh process."""
    r = subprocess.run([sys.executable, "-m", "tests.cli_batch"], input=json.dumps(cases), env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def run_in_process(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """`bench ARGV` in this process under `env` (restored after), for runs a test needs as setup."""
    from bench.cli import main

    saved = dict(os.environ)
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.clear()
        os.environ.update(env)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, stderr: str, expected_code: int, words: list[str], prefix: str = "bench") -> str:
    """The issue's contract for a bad input: the exit code, one line, no traceback, naming what is wrong."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert code == expected_code, f"exit {code}, expected {expected_code}: {stderr!r}"
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {stderr!r}"
    line = lines[0]
    assert line.startswith(prefix) and ": error: " in line, line
    for w in words:
        assert w in line, f"{w!r} not in {line!r}"
    return line
