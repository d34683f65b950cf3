"""Benchmarks run (never timed here): the real `python -m bench.benchmarks` entry point in quick mode
writes its JSON and the table."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.benchmarks import load_all

from .conftest import ROOT


def run_benchmarks(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.benchmarks", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_quick_benchmark_writes_json_and_table(env, tmp_path):
    r = run_benchmarks("--quick", "harness_overhead", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "results" / "bench" / "harness_overhead.json").read_text())
    assert out["ratio"] > 0 and out["harness_ms_per_step"] > 0 and out["bare_ms_per_step"] > 0
    assert out["command"].startswith("python -m bench.benchmarks harness_overhead")
    table = (tmp_path / "results" / "bench" / "README.md").read_text()
    assert "| harness_overhead |" in table and "ratio=" in table


def test_unknown_benchmark_is_refused(env):
    r = run_benchmarks("no_such_benchmark", env=env)
    assert r.returncode == 2 and "unknown benchmark 'no_such_benchmark'" in r.stderr


def test_every_registered_benchmark_is_a_callable():
    registry = load_all()
    assert "harness_overhead" in registry and all(callable(fn) for fn in registry.values())
