"""The expected best score against a budget of device-seconds, not of trials.

Lucic et al. 2018 compared variants at an equal number of hyperparameter settings; a study with
`[study] budget_seconds` gives each variant equal *compute*, and a variant with costlier steps
(unrolled_gan about 7 ns_gan steps per step, mbd_gan about 3.5) runs fewer trials in it. Here the
trials of a variant are run in a random order, each costing its recorded `seconds`, and the best
score among those finished by T seconds is the best at budget T:

    best(T) = min { f_i : trial i finished, i.e. the seconds of the trials before it and its own <= T }

`time_curves` averages best(T) over `orders` random orders (seeded) into its expectation and
median; a budget at which no trial has finished yet counts as +inf, as a diverged run does (the
expectation is then +inf, the median stays finite once most orders have a finished trial). When
T reaches the variant's total seconds every trial is in and best(T) is the best trial. The grid is
log-spaced from the cheapest trial to the largest total of any variant (and includes the study's
budget_seconds). Trials without a recorded `seconds` (running, lost) are left out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS = ["dataset", "variant", "n", "seconds", "expected_best", "median_best", "trials_done", "total_seconds"]


def costs_and_scores(best: pd.DataFrame) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Per (dataset, variant): (seconds, score) of the scored trials that recorded their seconds."""
    b = best[best["score"].notna() & np.isfinite(pd.to_numeric(best["seconds"], errors="coerce"))]
    return {key: (g["seconds"].to_numpy(float), g["score"].to_numpy(float)) for key, g in b.groupby(["dataset", "variant"], sort=False)}


def best_within(seconds: np.ndarray, scores: np.ndarray, grid: np.ndarray, orders: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    """Expected and median best score, and mean trials finished, at each budget of `grid` (seconds),
    over `orders` random orders of the trials."""
    rng = np.random.default_rng(seed)
    n = len(seconds)
    perm = np.argsort(rng.random((orders, n)), axis=1)  # (R, n) random orders
    done_at = np.cumsum(seconds[perm], axis=1)  # (R, n): when each trial of the order finishes
    running = np.minimum.accumulate(scores[perm], axis=1)  # (R, n): best so far
    limit = grid * (1 + 1e-12)  # a trial finishing exactly at T is in (sums of floats)
    finished = np.stack([np.searchsorted(row, limit, side="right") for row in done_at])  # (R, G), rows are sorted
    rows = np.arange(orders)[:, None]
    best = np.where(finished > 0, running[rows, np.maximum(finished - 1, 0)], np.inf)  # (R, G)
    with np.errstate(invalid="ignore"):
        expected = np.where(np.isinf(best).any(axis=0), np.inf, np.where(np.isinf(best), 0, best).mean(axis=0))
    return {"expected_best": expected, "median_best": np.quantile(best, 0.5, axis=0, method="lower"),
            "trials_done": finished.mean(axis=0)}


def grid_for(data: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]], points: int = 60, budget_seconds: float = 0.0) -> np.ndarray:
    if not data:
        return np.array([])
    lo = min(s.min() for s, _ in data.values())
    hi = max(max(s.sum() for s, _ in data.values()), budget_seconds)
    extra = [budget_seconds] if budget_seconds > 0 else []
    return np.unique(np.concatenate([np.geomspace(max(lo, 1e-9), max(hi, lo), points), extra, [s.sum() for s, _ in data.values()]]))


def time_curves(best: pd.DataFrame, orders: int = 2000, seed: int = 0, budget_seconds: float = 0.0) -> pd.DataFrame:
    """Per (dataset, variant) and budget T on one grid for the dataset: expected and median best
    score among the trials finished within T device-seconds (columns COLUMNS)."""
    out = []
    data = costs_and_scores(best)
    for dataset in dict.fromkeys(d for d, _ in data):
        mine = {k: v for k, v in data.items() if k[0] == dataset}
        grid = grid_for(mine, budget_seconds=budget_seconds)
        for i, ((_, variant), (sec, sc)) in enumerate(mine.items()):
            r = best_within(sec, sc, grid, orders, seed + i)
            out.append(pd.DataFrame({"dataset": dataset, "variant": variant, "n": len(sec), "seconds": grid, **r,
                                     "total_seconds": float(sec.sum())}))
    return pd.concat(out, ignore_index=True)[COLUMNS] if out else pd.DataFrame(columns=COLUMNS)


def at_budgets(curves: pd.DataFrame, budgets: list[float]) -> pd.DataFrame:
    """The rows of `curves` at the grid point nearest each budget (for the report's table)."""
    rows = []
    for (dataset, variant), g in curves.groupby(["dataset", "variant"], sort=False):
        for b in budgets:
            rows.append(g.iloc[int(np.argmin(np.abs(np.log(g["seconds"].to_numpy()) - np.log(b))))])
    return pd.DataFrame(rows).reset_index(drop=True) if rows else curves.iloc[:0]


def figure(curves: pd.DataFrame, metric: str, budget_seconds: float = 0.0):
    """Per dataset: expected (solid) and median (dotted) best score against device-seconds, log x;
    the study's budget_seconds as a vertical line."""
    from bench.report import figures
    from bench.report.figures import _colors, _panels

    datasets = list(dict.fromkeys(curves["dataset"]))
    fig, axes = _panels(len(datasets), width=5.5, height=4.0)
    for ax, dataset in zip(axes, datasets):
        c = curves[curves["dataset"] == dataset]
        variants = list(dict.fromkeys(c["variant"]))
        colors = _colors(variants)
        for v in variants:
            g = c[c["variant"] == v]
            t = g["seconds"].to_numpy(float)
            for col, style, label in (("expected_best", "-", f"{v} (n={int(g['n'].iloc[0])}, {g['total_seconds'].iloc[0]:.3g} s)"),
                                      ("median_best", ":", None)):
                y = g[col].to_numpy(float)
                ok = np.isfinite(y)
                ax.plot(t[ok], y[ok], color=colors[v], linestyle=style, label=label, marker="o" if ok.sum() == 1 else None)
        if budget_seconds > 0:
            ax.axvline(budget_seconds, color="grey", linewidth=1, linestyle="--", label=f"budget_seconds = {budget_seconds:g}")
        ax.set_xscale("log")
        figures.log_ticks(ax.xaxis)
        ax.set_xlabel("budget (device-seconds of trials, run in a random order)")
        ax.set_ylabel(figures.score_label("expected best score", metric))
        figures.title(ax, f"{dataset}: best score within a device-time budget (dotted: median)", 9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig
