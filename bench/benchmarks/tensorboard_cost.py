"""What `[train] tensorboard = true` costs (issue 19, point 2): `python -m bench.benchmarks tensorboard`.

Two measurements, in one process:

- **Per call** (precise): the board's work in the loop, timed alone on a real trial's values: one
  `Board.train` per log interval (a scalar per loss term), one `Board.checkpoint` per checkpoint
  (a scalar per metric and the sample grid: PNG encode, decode, image summary), and the writer's
  open (hyperparameters) and close (the final flush). The cost per training step at a study's
  intervals is train_us / log_every + checkpoint_ms / checkpoint_every.
- **Per trial** (the whole loop, noisy): `train.run_trial` with the key on / off, side by side
  (interleaved, order swapped each repeat, ratio of medians), evaluation time excluded on both
  sides as `harness_overhead` does; both trials write their folders under a scratch results root
  (the board watches only a study's own trial folders, records.tensorboard_run_dir).

The quick study's setting: ns_gan at its paper default, infogan width 0.25, batch 64, digits5k.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import torch

from bench import records
from bench.benchmarks import benchmark, timing
from bench.benchmarks.timing import median, ratio, side_by_side
from bench.config import load_study
from bench.gan.variants import VARIANTS
from bench.trial import tboard, train


def _trial_seconds(cfg: Any, number: int) -> tuple[float, Any]:
    """(seconds of run_trial without its evaluations, result) for trial `number` of the scratch study."""
    v = VARIANTS["ns_gan"]
    tdir = records.trial_dir(cfg.name, v.name, number)
    tdir.mkdir(parents=True)
    with timing.evaluation_seconds() as eval_s:
        t0 = time.perf_counter()
        result = train.run_trial(cfg, v, dict(v.defaults), train.trial_seeds(0, 0), tdir, torch.device("cpu"))
        wall = time.perf_counter() - t0
    if result.outcome != "complete":
        raise RuntimeError(f"benchmark trial ended {result.outcome}: {result.reason}")
    return wall - eval_s[0], result


@benchmark("tensorboard")
def tensorboard_cost(quick: bool) -> dict[str, Any]:
    steps, log_every, repeats = (20, 5, 1) if quick else (100, 10, 3)
    calls, image_calls = (50, 2) if quick else (2000, 20)
    base = load_study("quick")
    cfg = base.replace("model", width=0.25).replace("train", steps=steps, checkpoint_every=steps, log_every=log_every,
                                                   device="cpu")
    on = cfg.replace("train", tensorboard=True)
    before = os.environ.get("BENCH_RESULTS")
    with tempfile.TemporaryDirectory() as root:
        os.environ["BENCH_RESULTS"] = root
        try:
            number = iter(range(10_000))
            trial_times = side_by_side({"on": lambda: _trial_seconds(on, next(number))[0],
                                        "off": lambda: _trial_seconds(cfg, next(number))[0]}, repeats, warmup=0 if quick else 1)
            # The values and images a real trial hands the board.
            _, result = _trial_seconds(cfg, next(number))
            tdir = records.trial_dir(cfg.name, "ns_gan", 0)
            values = next(r for r in records.read_jsonl(records.metrics_path(tdir)) if r["kind"] == "train")
            values = {k: v for k, v in values.items() if k not in ("kind", "step")}
            metrics = {k: v for k, v in result.evaluations[-1].items() if k != "step"}
            v = VARIANTS["ns_gan"]
            from bench import data as data_mod

            data = data_mod.load(cfg.data.dataset, data_mod.resolve_root(cfg.data.root))
            nets = train.build_nets(v, cfg.model.architecture, data.shape, cfg.model.width, cfg.model.z_dim, v.defaults, torch.device("cpu"))
            z = v.latent(train.fixed_z(1000, cfg.model.z_dim, cfg.eval.seed, torch.device("cpu")))
            images = train.generate(nets.G, z, cfg.eval.batch_size, cfg.eval.generator_mode)  # (1000, 1, 28, 28)

            run_dir = records.tensorboard_dir(cfg.name) / "micro"
            t0 = time.perf_counter()
            board = tboard.Board(run_dir, "ns_gan", v.defaults, cfg.eval.metrics[0])
            open_ms = 1000 * (time.perf_counter() - t0)
            t0 = time.perf_counter()
            for step in range(calls):
                board.train(step, values)
            train_us = 1e6 * (time.perf_counter() - t0) / calls
            t0 = time.perf_counter()
            for step in range(image_calls):
                board.checkpoint(step, metrics, images, data.test)
            checkpoint_ms = 1000 * (time.perf_counter() - t0) / image_calls
            t0 = time.perf_counter()
            board.close()
            close_ms = 1000 * (time.perf_counter() - t0)
            event_bytes = sum(p.stat().st_size for p in run_dir.glob("events.out.tfevents.*"))
        finally:
            if before is None:
                os.environ.pop("BENCH_RESULTS", None)
            else:
                os.environ["BENCH_RESULTS"] = before
    on_ms, off_ms = (1000 * median(trial_times[s]) / steps for s in ("on", "off"))
    per_step = lambda log, ckpt: round(train_us / log + 1000 * checkpoint_ms / ckpt, 2)  # noqa: E731  (microseconds)
    return {
        "ratio": ratio(trial_times, "on", "off"),
        "train_call_us": round(train_us, 1),
        "checkpoint_call_ms": round(checkpoint_ms, 2),
        "us_per_step_quick_study": per_step(base.train.log_every, base.train.checkpoint_every),
        "us_per_step_paper_intervals": per_step(100, 3906),
        "detail": {"variant": "ns_gan (paper default)", "width": 0.25, "batch": cfg.train.batch_size,
                   "terms_per_log": len(values), "metrics_per_checkpoint": len(metrics),
                   "ratio": f"run_trial with tensorboard / without, evaluation excluded, {repeats} interleaved repeats of "
                            f"{steps} steps, log_every {log_every}, one checkpoint",
                   "ms_per_step": {"on": round(on_ms, 2), "off": round(off_ms, 2)},
                   "open_ms": round(open_ms, 1), "close_ms": round(close_ms, 1),
                   "event_bytes_micro_run": event_bytes, "calls": {"train": calls, "checkpoint": image_calls},
                   "us_per_step": "train_call_us / log_every + checkpoint_call_ms / checkpoint_every; quick study "
                                  f"{base.train.log_every} / {base.train.checkpoint_every}, paper 100 / 3906",
                   "trial_seconds": trial_times},
        "command": "python -m bench.benchmarks tensorboard",
    }
