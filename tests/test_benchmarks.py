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
    r = run_benchmarks("--quick", "loop_options", "no_such_benchmark", env=env)
    assert r.returncode == 2 and "unknown benchmark 'no_such_benchmark'" in r.stderr
    r = run_benchmarks("--quick", "loop_options", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads((tmp_path / "results" / "bench" / "loop_options.json").read_text())
    assert out["ratio"] > 0 and out["detail"]["steps_per_s"]["harness"] > 0
    assert {"adam_loop_vs_default", "bf16_vs_default", "channels_last_vs_default"} <= set(out)
    assert out["command"].startswith("python -m bench.benchmarks loop_options")
    table = (tmp_path / "results" / "bench" / "README.md").read_text()
    assert "| loop_options |" in table and "ratio=" in table
    assert f"| {out['wall_s']} |" in table and f"1 benchmark(s), {out['wall_s']:.0f} s of wall time in all" in table  # make bench's time


def test_every_issue9_benchmark_is_registered():
    registry = load_all()
    expected = {"harness_overhead", "train_throughput", "loop_options", "loop_compile", "packing_cpu", "budget_efficiency"}
    assert expected <= set(registry) and all(callable(fn) for fn in registry.values())


def test_gpu_script_cpu_fallback_runs_in_smoke_mode(env, tmp_path):
    """The prepared GPU script's path (throughput, speed keys, packing with 1 and 2 workers) on the CPU; its
    FID part is fid_path's comparison (Inception on a CPU is too slow for the suite: run it by hand)."""
    r = subprocess.run([sys.executable, "-m", "bench.benchmarks.gpu", "--smoke", "--parts", "throughput,packing"], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    bench_dir = tmp_path / "results" / "bench"
    thr = json.loads((bench_dir / "gpu-throughput.json").read_text())
    assert thr["smoke"] is True and thr["infogan_steps_per_s"] > 0 and thr["option_ratio"]["default"] == 1.0
    assert {"bf16", "channels_last"} <= set(thr["option_ratio"])
    pack = json.loads((bench_dir / "gpu-packing.json").read_text())
    assert [row["workers"] for row in pack["detail"]["curves"]["default"]["rows"]] == [1, 2]
    assert all(row["trials_per_hour"] > 0 for row in pack["detail"]["curves"]["default"]["rows"])
