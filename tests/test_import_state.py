"""Importing the package changes no process-wide state (issue 13, point 5): the process umask and
Optuna's log level are left as the importer set them, and os.environ is not written. A `bench`
command sets what it needs once, in its entry point (`cli.configure`)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# In a fresh interpreter: record every call that changes the umask or Optuna's level, then import
# every module of the package (entry-point scripts excepted: importing them runs a command).
PROBE = r"""
import json, os, pkgutil, importlib, sys
import optuna

calls = []
real_umask, real_set = os.umask, optuna.logging.set_verbosity
os.umask = lambda mask: calls.append(("umask", mask)) or real_umask(mask)
optuna.logging.set_verbosity = lambda level: calls.append(("optuna", level)) or real_set(level)
os.umask(0o027)
real_set(optuna.logging.CRITICAL)
calls.clear()
env = dict(os.environ)
import bench
names = [m.name for m in pkgutil.walk_packages(bench.__path__, "bench.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
umask = real_umask(0o027)
print(json.dumps({"modules": len(names), "calls": calls, "umask": umask, "level": optuna.logging.get_verbosity(),
                  "env_changed": sorted(k for k in os.environ.keys() | env.keys() if os.environ.get(k) != env.get(k)
                                      and not k.startswith("TORCHINDUCTOR_"))}))  # torch's compiler sets its own
"""


def test_importing_every_module_leaves_umask_optuna_level_and_environment_alone():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["modules"] > 50  # the walk found the package
    assert seen["calls"] == []
    assert seen["umask"] == 0o027
    assert seen["level"] == 50  # optuna.logging.CRITICAL, as set before the imports
    assert seen["env_changed"] == []


def test_a_written_record_follows_the_process_umask(tmp_path):
    from bench import records

    before = os.umask(0o027)
    try:
        records.write_json(tmp_path / "a.json", {"x": 1})
        os.umask(0o002)
        records.atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(before)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640
    assert stat.S_IMODE((tmp_path / "b.bin").stat().st_mode) == 0o664
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]  # no temporary file left


@pytest.mark.parametrize("debug, level", [(False, "ERROR"), (True, "WARNING")])
def test_the_entry_point_sets_optuna_level_and_results_folder(tmp_path, monkeypatch, debug, level):
    import optuna

    from bench import cli, records

    monkeypatch.delenv("BENCH_RESULTS", raising=False)
    before = optuna.logging.get_verbosity()
    try:
        cli.configure("status", str(tmp_path / "r"), debug)
        assert optuna.logging.get_verbosity() == getattr(optuna.logging, level)
        assert records.results_root() == tmp_path / "r"
    finally:
        optuna.logging.set_verbosity(before)
