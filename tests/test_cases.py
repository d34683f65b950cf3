"""The case studies (issue 16): every studies/cases/*.toml loads, and every committed case folder
docs/case-studies/<case>/ is what `bench report` wrote for that study file — its variants, its
budget and its metric names — with a README, small files only and no checkpoints or databases.
The studies themselves are not rerun here (they take an hour of CPU each)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from bench.config import load_study

ROOT = Path(__file__).resolve().parents[1]
CASE_FILES = sorted((ROOT / "studies" / "cases").glob("*.toml"))
CASE_DIRS = sorted(p for p in (ROOT / "docs" / "case-studies").glob("*") if p.is_dir())
REPORT_FILES = ("report.md", "summary.csv", "trials.csv", "budget.csv", "comparisons.csv")
MAX_BYTES = 3 * 2**20


def test_there_are_case_study_files():
    assert CASE_FILES, "studies/cases/ holds the case studies' study files"


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_case_study_file_loads(path):
    cfg = load_study(str(path))
    assert cfg.study.name == path.stem  # results/<name>/ and docs/case-studies/<name>/ agree
    assert cfg.train.deterministic, "case studies run in deterministic mode, so a rerun reproduces trials.csv"


@pytest.mark.parametrize("case", CASE_DIRS, ids=lambda p: p.name)
def test_committed_case_folder_matches_its_study_file(case):
    readme = case / "README.md"
    assert readme.is_file(), f"{case}: every case folder has a README with its commands and reading"
    for sub in sorted(p for p in case.rglob("*") if p.is_file()):
        assert sub.stat().st_size <= MAX_BYTES, f"{sub} is over {MAX_BYTES} bytes"
        assert sub.suffix not in {".db", ".pt", ".pth", ".sqlite"}, f"{sub}: no checkpoints or databases in a case folder"
    study = ROOT / "studies" / "cases" / f"{case.name}.toml"
    if not study.is_file():  # a case of figures only (seed_figures): README and figures, no study report
        assert list(case.rglob("*.png")), f"{case}: neither a study file studies/cases/{case.name}.toml nor figures"
        return
    cfg = load_study(str(study))
    for name in REPORT_FILES:
        assert (case / name).is_file(), f"{case / name} missing: commit what `bench report` wrote"
    trials = pd.read_csv(case / "trials.csv")
    assert set(trials["variant"]) <= set(cfg.study.variants), f"{case}: variants not in {study.name}"
    counts = trials.groupby("variant").size()
    assert (counts <= cfg.study.trials).all(), f"{case}: more trials than the budget of {study.name}"
    summary = pd.read_csv(case / "summary.csv")
    assert set(summary["variant"]) == set(trials["variant"])
    text = (case / "report.md").read_text()
    assert cfg.eval.metrics[0] in text, f"{case}/report.md does not name the objective {cfg.eval.metrics[0]}"
    assert cfg.study.name in text
