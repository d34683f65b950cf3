"""The README's Python examples run as written (issue 19, point 6): every ```python block, in
order, in one namespace, against a study named as the README names it (`quick`) whose storage is
a synthetic one (bench.report.synthetic: the shape of real records, made-up scores) with quick's
own trial budget, so an example that asks for more trials than the study has fails here."""

from __future__ import annotations

import re

import matplotlib
import pytest

from bench import records
from bench.config import load_study
from bench.report import synthetic

from .conftest import ROOT

BLOCKS = re.findall(r"^```python\n(.*?)^```", (ROOT / "README.md").read_text(encoding="utf-8"), flags=re.S | re.M)


def test_the_readme_has_python_examples():
    assert BLOCKS, "no ```python block in README.md: this test would check nothing"


def test_the_readme_python_examples_run_as_written(tmp_path, monkeypatch):
    matplotlib.use("Agg", force=True)
    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("BENCH_STORAGE", raising=False)
    quick = load_study("quick")
    exported = synthetic.synthetic_export(quick.study.trials, variants=("ns_gan", "wgan"), study="quick",
                                          dataset=quick.data.dataset, metrics=tuple(quick.eval.metrics), checkpoints=2)
    records.study_dir("quick").mkdir(parents=True)
    synthetic.write_sqlite(records.default_storage_url("quick"), exported)
    namespace: dict = {}
    for i, block in enumerate(BLOCKS):
        try:
            exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)
        except Exception as e:
            pytest.fail(f"README.md's python block {i + 1} fails: {type(e).__name__}: {e}\n{block}")
