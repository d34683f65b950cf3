"""Timing helpers shared by the benchmarks: side-by-side repeats, medians, ratios.

These machines are shared and noisy, so a comparison is never two separate runs: both sides run
in the same process, interleaved (ABAB, the order swapped every repeat so drift in the load hits
both equally), and the figure is the ratio of the medians of the repeats.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any, Callable, Iterator


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def side_by_side(sides: dict[str, Callable[[], float]], repeats: int, warmup: int = 1) -> dict[str, list[float]]:
    """Run every side `warmup` times untimed, then `repeats` rounds, the order rotated each round.

    Each side is a callable returning the seconds it measured itself (so it can exclude its own
    setup or evaluation); the result maps each side to its list of seconds.
    """
    names = list(sides)
    for _ in range(warmup):
        for n in names:
            sides[n]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            times[n].append(sides[n]())
    return times


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    """median(num) / median(den), rounded for the table."""
    return round(median(times[num]) / median(times[den]), 3)


@contextlib.contextmanager
def evaluation_seconds() -> Iterator[list[float]]:
    """Time every `train.evaluate` call made inside the block: yields a one-element list holding the
    seconds spent evaluating so far (so a trial's training time is its wall time minus that)."""
    from bench.trial import train

    spent = [0.0]
    evaluate = train.evaluate

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return evaluate(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - t

    train.evaluate = timed
    try:
        yield spent
    finally:
        train.evaluate = evaluate
