"""The data registries through the CLI: `bench list` shows them; `bench fetch` fails in one line when
nothing can be downloaded (every request goes through a proxy on a closed local port, so nothing is)."""

from __future__ import annotations

from bench.data import DATASETS
from bench.models import ARCHITECTURES

from .conftest import run_cli


def test_bench_list_shows_every_dataset_and_architecture(capsys):
    from bench.cli import main

    assert main(["list"]) == 0  # the entry point in-process; test_study runs `bench list` as a subprocess
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert set(DATASETS) | set(ARCHITECTURES) | {"modes_ring8_10k", "hq_fraction_grid25_10k"} <= listed


def test_bench_fetch_without_network_is_one_line_naming_dataset_and_folder(env, tmp_path):
    env = {k: v for k, v in env.items() if k.lower() not in ("no_proxy", "bench_offline")}
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env[var] = "http://127.0.0.1:9"  # discard port: connection refused at once
    r = run_cli("fetch", "mnist", "--root", tmp_path / "data", env=env, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("bench: error: dataset mnist:") and str(tmp_path / "data" / "MNIST" / "raw") in line
    assert "the download failed" in line and "bench fetch mnist --root DIR" in line
