"""A report pools a metric's values only when every checkpoint was scored in one feature space
(issue 14, point 2): two trials whose metrics logs record different extractor weights are refused in
one line naming both; one space is named in report.md."""

from __future__ import annotations

import pytest

from bench import records, report
from bench.errors import HarnessError
from bench.report.document import render_markdown

from .test_report import _export, _trial

M = "fid_lenet_digits5k_1k_test"
SPACE = {"extractor": "lenet-digits5k", "sha256": "a" * 64, "preprocess": "uint8 round(x*255), /255", "recipe": "r"}


def _trial_with_log(tmp_path, number, provs, variant="wgan"):
    tdir = tmp_path / variant / records.trial_dir_name(number)
    tdir.mkdir(parents=True)
    for step, prov in provs:
        records.append_jsonl(tdir / "metrics.jsonl", {"kind": "eval", "step": step, M: 5.0 + number, "extractors": {M: prov}})
    return _trial(number, "complete", 5.0 + number, "complete", [{"step": s, M: 5.0 + number} for s, _ in provs], trial_dir=str(tdir))


def test_two_trials_scored_with_different_weights_are_not_pooled(tmp_path):
    other = {**SPACE, "sha256": "b" * 64}
    trials = [_trial_with_log(tmp_path, 0, [(5, SPACE), (10, SPACE)]), _trial_with_log(tmp_path, 1, [(5, other), (10, other)])]
    with pytest.raises(HarnessError) as e:
        report.tidy.frame_from_export(_export(trials))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{M}: checkpoints scored in different feature spaces cannot be pooled")
    assert "sha256 aaaaaaaaaaaa [uint8 round(x*255), /255] (wgan trial 0)" in msg
    assert "sha256 bbbbbbbbbbbb [uint8 round(x*255), /255] (wgan trial 1)" in msg


@pytest.mark.parametrize("change", [{"preprocess": "uint8, /255, resized"}, {"code": "torch-fidelity 0.4.0"}, {"extractor": "lenet-other"}])
def test_another_preprocessing_fidelity_version_or_extractor_is_another_space(tmp_path, change):
    trials = [_trial_with_log(tmp_path, 0, [(5, SPACE)]), _trial_with_log(tmp_path, 1, [(5, {**SPACE, **change})])]
    with pytest.raises(HarnessError, match="cannot be pooled"):
        report.tidy.frame_from_export(_export(trials))


def test_one_space_pools_and_is_named_and_a_rescore_supersedes(tmp_path):
    old = {**SPACE, "sha256": "b" * 64}
    unrecorded = {k: v for k, v in SPACE.items() if k != "preprocess"}  # a record from before preprocessing was recorded
    # trial 1's step 5 was first scored with other weights, then again (`bench eval --again`) in SPACE
    trials = [_trial_with_log(tmp_path, 0, [(5, SPACE), (10, unrecorded)]),
              _trial_with_log(tmp_path, 1, [(5, old), (10, SPACE), (5, SPACE)])]
    frame = report.tidy.frame_from_export(_export(trials))
    assert frame.attrs["feature_spaces"] == {M: SPACE}
    assert "extractors" not in frame.columns
    md = render_markdown(report.build(frame, resamples=50), {})
    assert f"{M}: lenet-digits5k, weights sha256 {'a' * 64}." in md
