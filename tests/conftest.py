"""Shared fixtures: every test writes results and caches under its own temporary folders, and
CLI tests run the real entry point (`python -m bench`) in a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TINY = """
[study]
name = "{name}"
seed = 0
variants = {variants}
trials = {trials}
space = "{space}"
sampler = "{sampler}"

[data]
dataset = "{dataset}"

[model]
architecture = "{architecture}"
width = {width}

[train]
batch_size = 16
steps = {steps}
checkpoint_every = {checkpoint_every}
log_every = 5
device = "cpu"

[eval]
metrics = {metrics}
batch_size = 250
generator_mode = "train"
"""


def tiny_study_text(**over) -> str:
    params = dict(name="tiny", variants='["ns_gan", "wgan"]', trials=1, space="narrow", sampler="random",
                  dataset="digits5k", architecture="infogan", width=0.125, steps=10, checkpoint_every=5,
                  metrics='["fid_lenet_digits5k_1k_test"]')
    params.update(over)
    return textwrap.dedent(TINY.format(**params))


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """One cache per test session: reference statistics are computed once, not once per test."""
    return tmp_path_factory.mktemp("bench-cache")


@pytest.fixture
def env(tmp_path, shared_cache, monkeypatch) -> dict[str, str]:
    results = tmp_path / "results"
    monkeypatch.setenv("BENCH_RESULTS", str(results))
    monkeypatch.setenv("BENCH_CACHE", str(shared_cache))
    monkeypatch.delenv("BENCH_STORAGE", raising=False)
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return e


@pytest.fixture
def tiny_study(tmp_path):
    """Write a tiny study file; returns a function (**overrides) -> path."""

    def make(**over) -> Path:
        path = tmp_path / f"{over.get('name', 'tiny')}.toml"
        path.write_text(tiny_study_text(**over))
        return path

    return make


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench", *map(str, args)], env=env, cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=timeout)


def sigint_default() -> None:
    """preexec_fn for a child a test sends Ctrl-C to: SIGINT at its default, as in a terminal. A suite
    started in the background (`make test &` from a script) passes SIGINT ignored to its children,
    and a Python started so never raises KeyboardInterrupt: the test would fail for no defect."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
