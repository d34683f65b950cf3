"""`bench report` on a real tiny study through the CLI: every file of the report, and the notebook
executed from the package's template so that it opens with its outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from .conftest import run_cli


def test_report_of_a_tiny_study_with_an_executed_notebook(env, tiny_study, tmp_path):
    path = tiny_study(trials=2, variants='["ns_gan", "wgan"]')
    r = run_cli("study", path, "--variant", "all", env=env)
    assert r.returncode == 0, r.stderr
    r = run_cli("report", path, "--resamples", "300", env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "results" / "tiny" / "report"
    assert f"report:  {out}/" in r.stdout and "ns_gan" in r.stdout and "wgan" in r.stdout
    for name in ("summary.csv", "trials.parquet", "budget.csv", "comparisons.csv", "importance.csv", "report.md",
                 "report.html", "report.ipynb", "figures/distribution.png", "figures/budget.png", "figures/importance.png",
                 "figures/learning_rate.png", "figures/samples.png"):
        assert (out / name).is_file(), name

    frame = pd.read_parquet(out / "trials.parquet")
    assert len(frame) == 2 * 2 * 2  # variants x trials x checkpoints (steps 10, a checkpoint every 5)
    assert {"hp_learning_rate", "hp_beta1", "fid_lenet_digits5k_1k_test", "state", "trials_spent", "step"} <= set(frame.columns)
    assert set(frame["state"]) == {"complete"} and set(frame["step"]) == {5, 10}
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["variant"]) == ["ns_gan", "wgan"] and list(summary["trials"]) == [2, 2]
    per_trial = pd.read_csv(out / "trials.csv")  # one row per trial, its best checkpoint's score
    assert len(per_trial) == 4 and set(per_trial["variant"]) == {"ns_gan", "wgan"}
    best = frame.groupby(["variant", "trial"])["fid_lenet_digits5k_1k_test"].min()
    for row in per_trial.itertuples():
        assert row.score == pytest.approx(best[(row.variant, row.trial)])

    nb = json.loads((out / "report.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["execution_count"] for c in code)
    outputs = [o for c in code for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr"], "a warning in the executed notebook (issue 19, point 5)"
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # distribution, budget, importance, lr, samples
    assert any("ns_gan" in "".join(o.get("data", {}).get("text/plain", "")) for o in outputs)
    md = (out / "report.md").read_text()
    assert "## Expected best score against budget" in md and "![" in md
