"""Benchmarks: `make bench` runs every registered benchmark and writes results/bench/<name>.json
plus a table, results/bench/README.md. Speed is measured here, never in tests.

A benchmark is `fn(quick: bool) -> dict` registered with `@benchmark("name")`; it returns its
figures (with units in the keys, e.g. `steps_per_s`) and, for comparisons, a `ratio` measured side
by side in the same run (medians of repeats; these machines are shared and noisy). Modules under
this package register on import; add yours to MODULES.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

BENCHMARKS: dict[str, Callable[[bool], dict[str, Any]]] = {}
MODULES: list[str] = [  # one per line, so parallel additions merge cleanly
    "bench.benchmarks.loop",
    "bench.benchmarks.data_path",
    "bench.benchmarks.report_speed",
    "bench.benchmarks.packing",
    "bench.benchmarks.search",
    "bench.benchmarks.fid_path",
    "bench.benchmarks.variants",
    "bench.benchmarks.cli_speed",
    "bench.benchmarks.estimate",
    "bench.benchmarks.tensorboard_cost",
]


def benchmark(name: str) -> Callable[[Callable[[bool], dict[str, Any]]], Callable[[bool], dict[str, Any]]]:
    def deco(fn: Callable[[bool], dict[str, Any]]) -> Callable[[bool], dict[str, Any]]:
        if name in BENCHMARKS:
            raise ValueError(f"benchmark {name!r} registered twice")
        BENCHMARKS[name] = fn
        return fn

    return deco


def host() -> dict[str, Any]:
    """Where a benchmark ran: the trial manifests' environment recorder (manifest.environment) for the
    GPU when there is one, else the CPU, and torch's thread count."""
    import torch

    from bench.trial import manifest

    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    return {**manifest.environment(device), "threads": torch.get_num_threads()}


def load_all() -> dict[str, Callable[[bool], dict[str, Any]]]:
    for m in MODULES:
        importlib.import_module(m)
    return BENCHMARKS
