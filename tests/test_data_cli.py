"""The data through the CLI: `bench list` shows the registries; `bench fetch` fails in one line when
nothing can be downloaded (every request goes through a proxy on a closed local port, so nothing is);
a study on missing data stops before its first trial; a tiny study on `triangles` runs."""

from __future__ import annotations

from bench import records
from bench.data import DATASETS
from bench.gan.architectures import ARCHITECTURES

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


def test_study_on_missing_data_stops_before_any_trial(env, tiny_study, tmp_path, monkeypatch, capsys):
    from bench.cli import main

    path = tiny_study(name="nomnist", variants='["ns_gan"]', dataset="mnist", metrics='["fid_inception_10k_test"]')
    empty = tmp_path / "empty-root"
    path.write_text(path.read_text().replace('dataset = "mnist"', f'dataset = "mnist"\nroot = "{empty}"'))
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    assert main(["study", str(path), "--variant", "ns_gan"]) == 1  # the entry point in-process
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"dataset mnist: its files are not in {empty / 'MNIST' / 'raw'}" in line and "bench fetch mnist" in line
    assert not (tmp_path / "results" / "nomnist" / "ns_gan").exists()  # no trial was started


def test_tiny_triangles_study_through_the_cli(env, tiny_study, tmp_path):
    path = tiny_study(name="tri", variants='["ns_gan"]', dataset="triangles", steps=10, checkpoint_every=10,
                      metrics='["triangles_dist_100_test", "triangles_prf_100_test"]')
    r = run_cli("study", path, "--variant", "ns_gan", env=env)
    assert r.returncode == 0, r.stderr
    tdir = tmp_path / "results" / "tri" / "ns_gan" / "trial-0000"
    log = list(records.read_jsonl(tdir / "metrics.jsonl"))
    (rec,) = [x for x in log if x["kind"] == "data"]
    assert rec["dataset"] == "triangles" and rec["path"] == "device-resident"
    (ev,) = [x for x in log if x["kind"] == "eval"]
    assert ev["triangles_dist_100_test"] > 0 and 0 <= ev["triangles_prf_100_test"] <= 1
    assert (tdir / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
