"""Every metric reaches the report (issue 14, point 4): evaluations appended by `bench eval` are
read from the trial logs into trials.parquet, the summary table, report.md and the figures, and
every secondary metric (and its parts: precision, recall, density) gets its median and best-trial
value per variant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench import records, report
from bench.report import synthetic

from .conftest import run_cli

FID, KID, PRC = "fid_lenet_digits5k_1k_test", "kid_lenet_digits5k_1k_test", "prc_lenet_digits5k_1k_test"


def _study_with_logs(root, n=5):
    """A synthetic study (FID objective, PRC secondary) whose trial folders hold metrics logs: the
    training-time eval records, then `bench eval` appends of KID at every checkpoint (at step 500
    twice, the second as `--again` would add it)."""
    exported = synthetic.synthetic_export(n, variants=("ns_gan", "wgan"), seed=3, checkpoints=2, metrics=(FID, PRC))
    kid = {}
    for s in exported:
        variant = s["user_attrs"]["variant"]
        for t in s["trials"]:
            v = 10.0 + t["number"] + (5 if variant == "wgan" else 0)
            evals = [{"step": 250, FID: v + 2, PRC: 0.3, f"{PRC}_precision": 0.4, f"{PRC}_recall": 0.2},
                     {"step": 500, FID: v, PRC: 0.5 + t["number"] / 100, f"{PRC}_precision": 0.6, f"{PRC}_recall": 0.1 * t["number"]}]
            t.update(state="complete", value=v, intermediate={e["step"]: e[FID] for e in evals})
            t["user_attrs"].update(outcome="complete", evaluations=evals, best_step=500)
            t["user_attrs"].pop("error", None)
            log = records.trial_dir("synthetic", variant, t["number"], root) / "metrics.jsonl"
            for e in evals:
                records.append_jsonl(log, {"kind": "eval", "seconds": 1.0, **e})
            for step, value in ((250, 0.02), (500, 0.9), (500, 0.01 * (t["number"] + 1))):  # the last supersedes 0.9
                records.append_jsonl(log, {"kind": "eval", "source": "bench eval", "step": step, KID: value, f"{KID}_std": 0.001})
            kid[(variant, t["number"])] = 0.01 * (t["number"] + 1)
    return exported, kid


def test_bench_eval_values_and_secondary_metrics_reach_every_table(tmp_path):
    exported, kid = _study_with_logs(tmp_path)
    frame = report.tidy.frame_from_export(exported, tmp_path / "synthetic")
    assert frame.attrs["metrics"] == [FID, PRC, KID]  # the study's, then those `bench eval` added
    at500 = frame[frame["step"] == 500].set_index(["variant", "trial"])
    assert at500[KID].to_dict() == pytest.approx(kid)  # the latest record of (step, metric) stands
    assert (frame.loc[frame["step"] == 250, KID] == 0.02).all() and (at500[FID] == [t["value"] for s in exported for t in s["trials"]]).all()

    rep = report.build(frame, resamples=100)
    s = rep.summary.set_index("variant")
    for variant in ("ns_gan", "wgan"):  # best checkpoint = step 500; best trial = trial 0
        assert s.loc[variant, f"{KID}_median"] == pytest.approx(np.median([kid[(variant, n)] for n in range(5)]))
        assert s.loc[variant, f"{KID}_best_trial"] == pytest.approx(0.01)
        assert s.loc[variant, f"{PRC}_median"] == pytest.approx(0.52)
        assert s.loc[variant, f"{PRC}_recall_median"] == pytest.approx(0.2)
        assert s.loc[variant, f"{PRC}_precision_best_trial"] == pytest.approx(0.6)
    assert f"{KID}_std_median" not in s  # a KID's spread over subsets is not a score
    t = rep.secondary.set_index(["variant", "metric"])
    assert t.loc[("wgan", KID), "better"] == "lower" and t.loc[("wgan", PRC), "better"] == "higher"
    assert t.loc[("wgan", f"{PRC}_recall"), "better"] == "higher" and (t["trials"] == 5).all()

    paths = report.write(rep, tmp_path / "report", notebook=False)
    md = paths["report.md"].read_text()
    section = md.split("## Secondary metrics\n", 1)[1].split("\n## ", 1)[0]
    assert f"| mnist | ns_gan | {KID} | lower | 5 | 0.03 | 0 | 0.01 |" in section
    assert f"| mnist | wgan | {PRC}_recall | higher | 5 | 0.2 | 0 | 0 |" in section
    assert "![secondary metrics per variant](figures/secondary.png)" in section
    assert paths["figures/secondary.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    back = pd.read_parquet(paths["trials.parquet"])
    assert back[KID].tolist() == pytest.approx(frame[KID].tolist()) and back.attrs["metrics"] == [FID, PRC, KID]


def test_a_pruned_trial_checkpoints_come_from_its_log_where_the_storage_has_none(tmp_path):
    exported, _ = _study_with_logs(tmp_path, n=4)
    t = exported[0]["trials"][1]
    t.update(state="pruned", value=t["intermediate"][250])
    t["user_attrs"].pop("evaluations")
    frame = report.tidy.frame_from_export(exported, tmp_path / "synthetic")
    rows = frame[(frame["variant"] == "ns_gan") & (frame["trial"] == 1)]
    assert rows["step"].tolist() == [250, 500] and rows[KID].tolist() == pytest.approx([0.02, 0.02])


def test_bench_eval_metric_in_the_report_of_a_real_tiny_study(env, tiny_study, tmp_path):
    path = tiny_study(trials=1, variants='["ns_gan"]')
    assert run_cli("study", path, "--variant", "ns_gan", env=env).returncode == 0
    r = run_cli("eval", path, "--metrics", KID, env=env)
    assert r.returncode == 0, r.stderr
    log = tmp_path / "results" / "tiny" / "ns_gan" / "trial-0000" / "metrics.jsonl"
    added = {x["step"]: x[KID] for x in records.read_jsonl(log) if x.get("source") == "bench eval"}
    assert sorted(added) == [5, 10]
    r = run_cli("report", path, "--no-notebook", "--resamples", "100", env=env)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "results" / "tiny" / "report"
    frame = pd.read_parquet(out / "trials.parquet")
    assert dict(zip(frame["step"], frame[KID])) == pytest.approx(added)
    summary = pd.read_csv(out / "summary.csv")
    best = report.per_trial(frame).iloc[0]
    assert summary[f"{KID}_best_trial"].iloc[0] == pytest.approx(added[int(best["best_checkpoint"])])
    md = (out / "report.md").read_text()
    assert "## Secondary metrics" in md and KID in md.split("## Secondary metrics", 1)[1]
    assert (out / "figures" / "secondary.png").is_file()
    assert "one variant only (ns_gan, n = 1): nothing to compare." in r.stdout
