"""Several trials per device: the packing curve, trials/hour for k concurrent trial processes.

The paper's networks are small: one trial leaves a modern GPU mostly idle, so a study runs
several workers on one device (`bench worker`, one process each). This measures what that buys:
k processes each run the same trials back to back (`train.run_trial`, training plus its
evaluation, the work of a worker minus the storage round trip), all sent their trials at the same
moment after loading their data and warming their caches, and the figure is the trials finished
per hour of wall time. `ratio_k` is trials/hour with k workers over trials/hour with one, measured
in the same run. On a CPU each process runs one thread (two OpenMP threads per process on two
shared cores thrash); on a GPU each gets an equal share of the host's cores for its Python side.

On the 2-core CPU of this project the curve can only say that two processes share two cores
(other engineers' jobs run there too); the GPU curve (1, 2, 4, 8 workers) comes from
`python -m bench.benchmarks.gpu`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from bench.benchmarks import benchmark
from bench.config import StudyConfig, load_study, parse_study
from bench.gan.variants import VARIANTS
from bench.trial import train


def _worker(cfg: StudyConfig, variant: str, device: str, threads: int, jobs: Any, out: Any) -> None:
    """A trial process: warm up once, then run the trials it is sent (a count; None ends it)."""
    torch.set_num_threads(threads)
    v = VARIANTS[variant]
    dev = torch.device(device)
    with tempfile.TemporaryDirectory() as d:
        warm = cfg.replace("train", steps=2, checkpoint_every=2)  # data, extractor, reference stats, kernels
        train.run_trial(warm, v, dict(v.defaults), train.trial_seeds(0, 0), Path(d) / "warm", dev)
        out.put("ready")
        done = 0
        while (trials := jobs.get()) is not None:
            t0 = time.perf_counter()
            for _ in range(trials):
                done += 1
                result = train.run_trial(cfg, v, dict(v.defaults), train.trial_seeds(0, done), Path(d) / f"t{done}", dev)
                if result.outcome != "complete":
                    raise RuntimeError(f"packing trial ended {result.outcome}: {result.reason}")
            out.put(time.perf_counter() - t0)


def packing_curve(cfg: StudyConfig, worker_counts: list[int], trials: int, device: str = "cpu",
                  variant: str = "ns_gan") -> dict[str, Any]:
    """Trials/hour with k concurrent trial processes for each k, and each over the one-worker figure.

    max(k) processes are started and warmed once; for each k, the first k are sent `trials` trials
    at the same moment and the wall time until the last finishes is measured."""
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    n = max(worker_counts)
    threads = 1 if device == "cpu" else max(1, (os.cpu_count() or 1) // n)
    out = ctx.Queue()
    jobs = [ctx.Queue() for _ in range(n)]
    procs = [ctx.Process(target=_worker, args=(cfg, variant, device, threads, q, out), daemon=True) for q in jobs]
    for p in procs:
        p.start()
    rows = []
    try:
        for _ in procs:
            if out.get(timeout=900) != "ready":
                raise RuntimeError("a packing worker failed to start")
        for k in worker_counts:
            t0 = time.perf_counter()
            for q in jobs[:k]:
                q.put(trials)
            walls = [out.get(timeout=3600) for _ in range(k)]
            wall = time.perf_counter() - t0
            rows.append({"workers": k, "trials": k * trials, "wall_s": round(wall, 2), "slowest_worker_s": round(max(walls), 2),
                         "trials_per_hour": round(3600 * k * trials / wall, 1), "threads_per_worker": threads})
    finally:
        for q in jobs:
            q.put(None)
        for p in procs:
            p.join(timeout=60)
    base = rows[0]["trials_per_hour"]
    return {"rows": rows, **{f"ratio_{r['workers']}": round(r["trials_per_hour"] / base, 3) for r in rows}}


def cpu_config(quick: bool) -> StudyConfig:
    """The quick study's network for 80 D steps and one FID; a smoke run uses ring8's small MLP instead."""
    if quick:
        raw = {"study": {"name": "packing-smoke"}, "data": {"dataset": "ring8"}, "model": {"architecture": "mlp"},
               "train": {"steps": 10, "checkpoint_every": 10, "log_every": 10, "device": "cpu", "keep_checkpoints": False},
               "eval": {"metrics": ["swd_ring8_10k_test"], "batch_size": 10_000, "generator_mode": "eval"}}
        return parse_study(raw, "<packing smoke>", "packing-smoke")
    return load_study("quick").replace("model", width=0.25).replace("train", steps=80, checkpoint_every=80, device="cpu")


@benchmark("packing_cpu")
def packing_cpu(quick: bool) -> dict[str, Any]:
    """Trials/hour with 1 and 2 concurrent workers on this CPU (ns_gan default, quick study's net, 80 steps + one FID)."""
    cfg = cpu_config(quick)
    curve = packing_curve(cfg, [1, 2], trials=1 if quick else 2)
    return {
        "ratio": curve["ratio_2"],
        "trials_per_hour_1": curve["rows"][0]["trials_per_hour"],
        "trials_per_hour_2": curve["rows"][1]["trials_per_hour"],
        "detail": {"rows": curve["rows"], "steps": cfg.train.steps, "width": cfg.model.width, "cpus": os.cpu_count(),
                   "note": "2 shared cores: at best 2x; the GPU curve is python -m bench.benchmarks.gpu"},
        "command": "python -m bench.benchmarks packing_cpu",
    }
