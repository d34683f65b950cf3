"""bench/catalogue.py, the torch-free copy of what the registries tell config validation and
`bench list` (bench/registries.py), agrees with the live registries; and those commands do not
import torch (issue 18, point 3: a fast CLI)."""

from __future__ import annotations

import subprocess
import sys

import optuna
import pytest

from bench import registries, storage
from bench.catalogue import CATALOGUE

from .conftest import ROOT, tiny_study_text

LIVE = registries.live_catalogue()


@pytest.mark.parametrize("part", sorted(LIVE))
def test_the_catalogue_is_up_to_date(part):
    assert CATALOGUE[part] == LIVE[part], "bench/catalogue.py is out of date: run `python -m bench.registries`"


@pytest.mark.parametrize("kind", registries.KINDS)
def test_names_and_docs_are_the_registries(kind):
    live = registries.get(kind)
    assert registries.names(kind) == list(live)
    assert all(registries.doc(kind, n) == (getattr(e, "doc", "") or "") for n, e in live.items())


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["status", "quick", "--variant", "nope"], ["study", "BAD"]])
def test_the_light_commands_do_not_import_torch(argv, tmp_path):
    """--help, list, status, and config validation (a file naming an unknown variant fails before any work)."""
    if argv == ["study", "BAD"]:
        bad = tmp_path / "bad.toml"
        bad.write_text(tiny_study_text(variants='["wgan", "nope"]'))
        argv = ["study", str(bad)]
    code = ("import sys\nfrom bench.cli import main\n"
            f"try:\n    rc = main({argv!r})\nexcept SystemExit as e:\n    rc = e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('rc', rc)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(ROOT), "BENCH_RESULTS": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == ("rc 2" if "nope" in argv or argv[0] == "study" else "rc 0")


def test_status_shows_the_variants_that_exist_and_counts_the_rest_without_torch(tmp_path):
    """A study of three variants of which one was started: one line for it, one count for the rest."""
    path = tmp_path / "three.toml"
    path.write_text(tiny_study_text(name="three", variants='["ns_gan", "wgan", "lsgan"]', trials=3))
    (tmp_path / "three").mkdir()
    st = storage.open_storage(f"sqlite:///{tmp_path / 'three' / 'optuna.db'}", heartbeat=False)
    optuna.create_study(study_name="three:wgan", storage=st)
    st.engine.dispose()
    code = ("import sys\nfrom bench.cli import main\n"
            f"rc = main(['status', {str(path)!r}])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\nprint('rc', rc)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={"PYTHONPATH": str(ROOT), "BENCH_RESULTS": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "rc 0" and len(lines) == 3, lines
    assert lines[0].startswith("three:wgan: 0/3 done"), lines
    assert lines[1].startswith("three: 2 of 3 variants not created yet (budget 3 trials each"), lines
