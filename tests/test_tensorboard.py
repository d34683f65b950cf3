"""TensorBoard (issue 19, point 2): a tiny study run with `--tensorboard` leaves one run per trial whose
scalars, images and hyperparameters, read back with TensorBoard's own EventAccumulator, equal what the
trial recorded in metrics.jsonl, samples.png and config.json; the key never changes a study's identity."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from bench import records
from bench.config import parse_study
from bench.errors import ConfigError
from tests.conftest import run_cli

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def _accumulator(run_dir):
    ea = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.SCALARS: 0,
                                                                         event_accumulator.IMAGES: 0,
                                                                         event_accumulator.TENSORS: 0})
    return ea.Reload()


def _png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_tensorboard_run_mirrors_the_trial_records(env, tiny_study, tmp_path):
    path = tiny_study(trials=1)
    r = run_cli("study", path, "--variant", "wgan", "--tensorboard", "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    sdir = tmp_path / "results" / "tiny"
    tdir = sdir / "wgan" / "trial-0000"
    run_dir = sdir / "tensorboard" / "wgan" / "trial-0000"
    assert list(run_dir.glob("events.out.tfevents.*")), f"no event file in {run_dir}"
    ea = _accumulator(run_dir)
    log = list(records.read_jsonl(tdir / "metrics.jsonl"))

    # Every loss term at every log interval, the same numbers as metrics.jsonl (float32 in the event file).
    trains = [x for x in log if x["kind"] == "train"]
    terms = sorted({k for x in trains for k in x if k not in ("kind", "step")})
    assert {"d_loss", "g_loss"} <= set(terms)
    assert sorted(t for t in ea.Tags()["scalars"] if t.startswith("train/")) == [f"train/{k}" for k in terms]
    for k in terms:
        got = [(e.step, e.value) for e in ea.Scalars(f"train/{k}")]
        want = [(x["step"], x[k]) for x in trains if k in x]
        assert [s for s, _ in got] == [s for s, _ in want]
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6)

    # Every metric at each checkpoint.
    evals = [x for x in log if x["kind"] == "eval"]
    metric = "fid_lenet_digits5k_1k_test"
    got = [(e.step, e.value) for e in ea.Scalars(f"eval/{metric}")]
    assert [s for s, _ in got] == [5, 10] == [x["step"] for x in evals]
    assert [v for _, v in got] == pytest.approx([x[metric] for x in evals], rel=1e-6)

    # The sample grid at each checkpoint; the last one is the picture samples.png holds.
    images = ea.Images("samples")
    assert [i.step for i in images] == [5, 10]
    assert np.array_equal(_png_pixels(images[-1].encoded_image_string), _png_pixels((tdir / "samples.png").read_bytes()))

    # Hyperparameters, fixed ones included, in the HParams tab and as text.
    from tensorboard.plugins.hparams import plugin_data_pb2

    hp = json.loads((tdir / "config.json").read_text())["hparams"]
    content = ea.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    shown = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    assert shown.pop("variant") == "wgan"
    assert set(shown) == set(hp)
    for k, v in hp.items():
        assert shown[k] == (pytest.approx(v) if isinstance(v, float) else v), k
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in experiment.metric_infos] == [f"eval/{metric}"]
    text = ea.Tensors("hparams/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "| disc_iters | 5 |" in text and "| learning_rate | 5e-05 |" in text

    # Off by default, and never part of the study's identity: the same study resumes without the
    # flag (no "different configuration" refusal) and its new trial writes no run.
    r2 = run_cli("study", path, "--variant", "wgan", "--trials", "2", "--no-progress", env=env)
    assert r2.returncode == 0, r2.stderr
    assert (sdir / "wgan" / "trial-0001" / "metrics.jsonl").is_file()
    assert not (sdir / "tensorboard" / "wgan" / "trial-0001").exists()


def test_tensorboard_key_is_validated_and_outside_the_digest():
    from bench.study.runner import compat_digest
    from bench.trial import manifest

    raw = {"study": {"name": "t"}, "train": {"tensorboard": True}}
    on = parse_study(raw, "t.toml")
    off = on.replace("train", tensorboard=False)
    assert on.train.tensorboard is True and parse_study({"study": {"name": "t"}}, "t.toml").train.tensorboard is False
    assert compat_digest(on) == compat_digest(off)
    assert compat_digest(on) != compat_digest(on.replace("train", log_every=7))  # the digest still sees other keys
    # The audit does not call it a difference either, set or absent (a trial recorded before the key existed).
    rec_on, rec_off = manifest.trial_config(on, "wgan", {}), manifest.trial_config(off, "wgan", {})
    assert manifest.compare({"config": rec_on}, {"config": rec_off}) == []
    del rec_off["study"]["train"]["tensorboard"]
    assert manifest.compare({"config": rec_off}, {"config": rec_on}) == []
    with pytest.raises(ConfigError, match=r"t\.toml: \[train\] tensorboard = 'yes' has the wrong type; expected true or false"):
        parse_study({"study": {"name": "t"}, "train": {"tensorboard": "yes"}}, "t.toml")


def test_only_the_studys_own_trial_folders_are_watched(tmp_path, monkeypatch):
    from bench.trial import tboard

    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    sdir = records.study_dir("s")
    assert records.tensorboard_run_dir("s", sdir / "wgan" / "trial-0003") == sdir / "tensorboard" / "wgan" / "trial-0003"
    assert records.tensorboard_run_dir("s", sdir / "seeds" / "wgan" / "trial-0001") == sdir / "tensorboard" / "seeds" / "wgan" / "trial-0001"
    for elsewhere in (tmp_path / "scratch" / "trial-0000",  # a dry run's calibration, a benchmark
                      sdir / "audit" / "scratch" / "search" / "wgan" / "trial-0000" / "rerun-0"):  # an audit's rerun
        assert records.tensorboard_run_dir("s", elsewhere) is None
        assert tboard.open_board(True, "s", elsewhere, "wgan", {}, "m") is tboard.OFF
    assert tboard.open_board(False, "s", sdir / "wgan" / "trial-0003", "wgan", {}, "m") is tboard.OFF
    assert not (sdir / "tensorboard").exists()


def test_the_cost_benchmark_is_registered():
    from bench.benchmarks import load_all

    assert callable(load_all()["tensorboard"])  # `python -m bench.benchmarks tensorboard`; speed is measured there, never here


def test_a_continued_trial_replays_the_records_it_carries_over(tmp_path, monkeypatch):
    """A trial that continues a stopped one starts a new folder holding the old log's records up to its
    step (resume.carry_over); its run shows them too, then its own steps: the whole curve, each step once."""
    from bench.trial import tboard

    monkeypatch.setenv("BENCH_RESULTS", str(tmp_path / "results"))
    carried = [{"kind": "data", "step": 0, "dataset": "digits5k"},
               *({"kind": "train", "step": s, "d_loss": float(s), "g_loss": -float(s)} for s in (5, 10)),
               {"kind": "eval", "step": 10, "seconds": 1.5, "m": 3.25, "extractors": {}}]
    board = tboard.open_board(True, "s", records.trial_dir("s", "wgan", 4), "wgan", {"learning_rate": 1e-4}, "m")
    board.replay(carried)
    board.train(15, {"d_loss": 15.0, "g_loss": -15.0})
    board.close()
    ea = _accumulator(board.run_dir)
    assert [(e.step, e.value) for e in ea.Scalars("train/d_loss")] == [(5, 5.0), (10, 10.0), (15, 15.0)]
    assert [(e.step, e.value) for e in ea.Scalars("train/g_loss")] == [(5, -5.0), (10, -10.0), (15, -15.0)]
    assert [(e.step, e.value) for e in ea.Scalars("eval/m")] == [(10, 3.25)]
    assert sorted(ea.Tags()["scalars"]) == ["eval/m", "train/d_loss", "train/g_loss"]
