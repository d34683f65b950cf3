"""Issue 19, point 6: the command line's conventions. `bench --version`; the global options
(`--results`, `--debug`, `-q`/`-v`) after the subcommand as well as before; one resolver for a
study given by name, by study file or by its results folder."""

from __future__ import annotations

import importlib.metadata
import subprocess

import optuna
import pytest

from bench import storage
from bench.cli import main

from .conftest import ROOT, tiny_study_text


def test_version_names_the_package_version_and_the_commit(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"bench (gan-bench) {importlib.metadata.version('gan-bench')}")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # a git checkout: the commit is named
        assert f"git {head.stdout.strip()}" in out


def _created(root, name="three"):
    """A study file and its storage under `root`, one variant created (no trial run)."""
    path = root.parent / f"{name}.toml"
    path.write_text(tiny_study_text(name=name, variants='["wgan"]', trials=3))
    (root / name).mkdir(parents=True)
    st = storage.open_storage(f"sqlite:///{root / name / 'optuna.db'}", heartbeat=False)
    optuna.create_study(study_name=f"{name}:wgan", storage=st)
    st.engine.dispose()
    return path


@pytest.mark.parametrize("where", ["before", "after"])
def test_results_is_accepted_before_and_after_the_subcommand(where, tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BENCH_RESULTS", raising=False)
    monkeypatch.delenv("BENCH_STORAGE", raising=False)
    monkeypatch.chdir(tmp_path)  # the default ./results holds nothing: only --results finds the study
    root = tmp_path / "elsewhere"
    path = _created(root)
    argv = ["--results", str(root), "status", str(path)] if where == "before" else ["status", str(path), "--results", str(root)]
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("three:wgan: 0/3 done")


def test_a_global_option_before_the_subcommand_is_not_reset_by_it(tmp_path, monkeypatch):
    from bench.cli import build_parser

    args = build_parser().parse_args(["--results", "A", "--debug", "list"])
    assert (args.results, args.debug) == ("A", True)
    args = build_parser().parse_args(["list", "--results", "B", "-vv"])
    assert (args.results, args.debug, args.verbose) == ("B", False, 2)


@pytest.mark.parametrize("verbose, quiet, shown", [(0, 0, {"info", "warning", "error"}), (1, 0, {"debug", "info", "warning", "error"}),
                                                   (0, 1, {"warning", "error"}), (0, 2, {"error"}), (0, 5, {"error"})])
def test_v_and_q_set_what_the_harness_says(verbose, quiet, shown, capsys):
    """Progress and notes go to stdout as before, warnings and errors to stderr; an error always shows."""
    import logging

    from bench.cli import configure_logging

    configure_logging(verbose, quiet)
    try:
        log = logging.getLogger("bench.study.runner")
        for level in ("debug", "info", "warning", "error"):
            getattr(log, level)(f"a {level} message")
        out, err = capsys.readouterr()
        said = {w.split()[1] for w in out.splitlines() + err.splitlines()}
        assert said == shown
        assert all(line.split()[1] in ("debug", "info") for line in out.splitlines())
    finally:
        configure_logging()


def test_v_and_q_count_on_either_side_of_the_subcommand():
    from bench.cli import build_parser

    args = build_parser().parse_args(["-v", "status", "x", "-q"])
    assert (args.verbose, args.quiet) == (1, 1)


# ---------------------------------------------------------------- one resolver: name, file or results folder

def test_a_results_folder_is_the_study_it_holds_from_a_trial_config(tmp_path, tiny_study):
    """A folder with a trial's config.json resolves to the study its file made (equal config)."""
    import json

    from bench.config import load_study

    cfg = load_study(str(tiny_study(name="made")))
    tdir = tmp_path / "res" / "made" / "wgan" / "trial-0000"
    tdir.mkdir(parents=True)
    (tdir / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "hparams": {}}))
    again = load_study(str(tmp_path / "res" / "made"))
    assert again == cfg and again.source == str((tmp_path / "res" / "made").resolve())


def test_a_results_folder_must_bear_its_studys_name(tmp_path, tiny_study):
    import json

    from bench.config import load_study
    from bench.errors import ConfigError

    cfg = load_study(str(tiny_study(name="made")))
    tdir = tmp_path / "renamed" / "wgan" / "trial-0000"
    tdir.mkdir(parents=True)
    (tdir / "config.json").write_text(json.dumps({"config": cfg.to_dict()}))
    with pytest.raises(ConfigError, match="holds study 'made'"):
        load_study(str(tmp_path / "renamed"))


def test_status_takes_the_results_folder_of_a_created_study(tmp_path, monkeypatch, capsys, tiny_study):
    """`bench study --create-only` leaves only optuna.db (no trial yet): the folder alone, from any
    working directory and without --results, answers as the study file does."""
    monkeypatch.delenv("BENCH_STORAGE", raising=False)
    root = tmp_path / "elsewhere"
    path = tiny_study(name="three", variants='["wgan"]', trials=3)
    assert main(["study", str(path), "--variant", "all", "--create-only", "--results", str(root)]) == 0
    by_file = capsys.readouterr().out
    monkeypatch.delenv("BENCH_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path / "..")
    assert main(["status", str(root / "three")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("three:wgan: 0/3 done") and out == by_file
    assert main(["status", str(root / "three"), "--results", str(tmp_path)]) == 2
    assert "is a results folder under" in capsys.readouterr().err


# ---------------------------------------------------------------- bench fid names its own flags

def test_fid_on_statistics_of_other_features_says_so_before_any_download(tmp_path, monkeypatch, capsys):
    """A LeNet .npz against the default Inception features: the mismatch, not the missing download."""
    import json

    import numpy as np

    monkeypatch.setenv("BENCH_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no Inception file anywhere
    monkeypatch.delenv("BENCH_INCEPTION_WEIGHTS", raising=False)
    a = tmp_path / "A.npz"
    np.savez(a, mu=np.zeros(128), sigma=np.eye(128), meta=np.array(json.dumps({"extractor": "lenet-digits5k", "sha256": "0" * 64})))
    (tmp_path / "dir").mkdir()
    assert main(["fid", str(a), str(tmp_path / "dir"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "the features differ" in err and "lenet-digits5k (128-d)" in err and "use --features lenet-digits5k" in err
    assert "not available" not in err


def test_fid_without_weights_names_its_weights_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("BENCH_INCEPTION_WEIGHTS", raising=False)
    (tmp_path / "dir").mkdir()
    assert main(["fid", str(tmp_path / "dir"), str(tmp_path / "dir"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "is not available" in err and "--weights /path/weights-inception-2015-12-05-6726825d.pth" in err
    assert "[eval]" not in err  # bench fid takes no study file
    assert main(["fid", str(tmp_path / "dir"), str(tmp_path / "dir"), "--weights", str(tmp_path / "no.pth")]) == 1
    assert "--weights = " in capsys.readouterr().err
