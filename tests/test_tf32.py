"""TF32 off during every evaluation and restored after; training keeps `[train] tf32`; both flags in
the manifest (issue 14, point 6). The flags are plain switches, so the CPU tests them."""

from __future__ import annotations

import pytest
import torch

from bench.config import parse_study
from bench.metrics import base, compute_metrics
from bench.metrics.base import EVAL_NUMERICS, tf32_state
from bench.trial import speed

OFF = {"cudnn_conv": "ieee", "cuda_matmul": "ieee"}
ON = {"cudnn_conv": "tf32", "cuda_matmul": "tf32"}


@pytest.fixture
def flags():
    """Leave the process's settings as the test found them."""
    before = tf32_state()
    yield
    base._set_tf32(before)


def _set(conv: str, matmul: str) -> None:
    base._set_tf32({"cudnn_conv": conv, "cuda_matmul": matmul})


@pytest.mark.parametrize("caller", [("tf32", "tf32"), ("tf32", "ieee"), ("ieee", "ieee"), ("ieee", "tf32")])
def test_evaluation_turns_tf32_off_and_restores_the_callers_flags(flags, caller):
    _set(*caller)
    before = tf32_state()
    seen = {}

    def metric(ctx, images):
        seen.update(tf32_state())
        return {"value": 1.0}

    m = base.Metric("probe_1", "probe", 1, metric)
    from bench import metrics

    metrics.METRICS["probe_1"] = m
    try:
        compute_metrics(None, ["probe_1"], torch.zeros(1, 1, 2, 2))
    finally:
        del metrics.METRICS["probe_1"]
    assert seen == OFF == EVAL_NUMERICS
    assert tf32_state() == before


def test_feature_extraction_runs_with_tf32_off_even_outside_compute_metrics(flags):
    _set("tf32", "tf32")
    seen = {}

    def run(x):
        seen.update(tf32_state())
        return {"f": x.float().flatten(1)}

    ext = base.Extractor("probe", "0" * 64, "none", ("f",), run)
    base.extract(ext, torch.zeros(3, 1, 2, 2, dtype=torch.uint8), torch.device("cpu"), 2)
    assert seen == OFF and tf32_state() == ON


def test_the_flags_are_restored_when_a_metric_raises(flags):
    _set("tf32", "tf32")
    with pytest.raises(RuntimeError):
        with base.full_precision():
            assert tf32_state() == OFF
            raise RuntimeError("boom")
    assert tf32_state() == ON


@pytest.mark.parametrize("key", [False, True])
def test_training_runs_under_the_study_key_and_the_manifest_records_both(flags, key):
    cfg = parse_study({"train": {"tf32": key}}, "x.toml", "x")
    _set("ieee" if key else "tf32", "tf32")  # whatever the process had
    with speed.numerics(cfg.train):
        assert tf32_state() == (ON if key else OFF)
    assert tf32_state() == {"cudnn_conv": "ieee" if key else "tf32", "cuda_matmul": "tf32"}
    s = speed.settings(cfg.train, torch.device("cpu"))
    assert s["tf32"] is key and s["numerics"] == {"training": ON if key else OFF, "evaluation": OFF}
