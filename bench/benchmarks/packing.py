"""Several trials per device: the packing curve, trials/hour for k concurrent trial processes.

The paper's networks are small: one trial leaves a modern GPU mostly idle, so a study runs
several workers on one device (`bench worker`, one process each). This measures what that buys:
k processes each run the same trials back to back (`train.run_trial`, training plus its
evaluation, the work of a worker minus the storage round trip), all released together from a
barrier after loading their data and warming their caches, and the figure is the trials finished
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

from .. import train
from ..config import StudyConfig, load_study
from ..variants import VARIANTS
from . import benchmark


def _worker(cfg: StudyConfig, variant: str, device: str, trials: int, threads: int, barrier: Any, out: Any) -> None:
    torch.set_num_threads(threads)
    v = VARIANTS[variant]
    dev = torch.device(device)
    with tempfile.TemporaryDirectory() as d:
        warm = cfg.replace("train", steps=2, checkpoint_every=2)  # data, extractor, reference stats, kernels
        train.run_trial(warm, v, dict(v.defaults), train.trial_seeds(0, 0), Path(d) / "warm", dev)
        barrier.wait()
        t0 = time.perf_counter()
        for i in range(trials):
            result = train.run_trial(cfg, v, dict(v.defaults), train.trial_seeds(0, i + 1), Path(d) / f"t{i}", dev)
            if result.outcome != "complete":
                raise RuntimeError(f"packing trial ended {result.outcome}: {result.reason}")
        out.put(time.perf_counter() - t0)


def trials_per_hour(cfg: StudyConfig, workers: int, trials: int, device: str = "cpu", variant: str = "ns_gan",
                    threads: int | None = None) -> dict[str, float]:
    """Run `workers` processes of `trials` trials each, started together; trials/hour over the slowest."""
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    threads = threads or (1 if device == "cpu" else max(1, (os.cpu_count() or 1) // workers))
    barrier, out = ctx.Barrier(workers + 1), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(cfg, variant, device, trials, threads, barrier, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    barrier.wait(timeout=600)
    t0 = time.perf_counter()
    walls = [out.get(timeout=3600) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a packing worker exited with code {p.exitcode}")
    return {"workers": workers, "trials": workers * trials, "wall_s": round(wall, 2), "slowest_worker_s": round(max(walls), 2),
            "trials_per_hour": round(3600 * workers * trials / wall, 1), "threads_per_worker": threads}


def packing_curve(cfg: StudyConfig, worker_counts: list[int], trials: int, device: str = "cpu") -> dict[str, Any]:
    """Trials/hour for each worker count, and each over the one-worker figure."""
    rows = [trials_per_hour(cfg, k, trials, device) for k in worker_counts]
    base = rows[0]["trials_per_hour"]
    return {"rows": rows, **{f"ratio_{r['workers']}": round(r["trials_per_hour"] / base, 3) for r in rows}}


def cpu_config(quick: bool) -> StudyConfig:
    steps = 10 if quick else 80
    base = load_study("quick")
    return base.replace("model", width=0.125 if quick else 0.25).replace("train", steps=steps, checkpoint_every=steps, device="cpu")


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
