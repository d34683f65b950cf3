"""Figures of a report (matplotlib, Agg backend, PNG and SVG): score distributions, budget curves,
importance, score against learning rate, and the best trial's samples per variant (image grids,
or for 2-D mixtures the scatter of generated against real points that each trial leaves).

The budget figure is the paper's "minimum FID as a function of budget" plot (Lucic et al. 2018,
figure 4): expected best-of-k with a bootstrap band, one curve per variant. Diverged runs are never
dropped: distributions count them in the axis labels, and the learning-rate view marks them with a
cross along the top edge.

For print (issue 19, point 5): every figure is written as PNG (at `dpi`) and as SVG (vector, for a
paper); titles are wrapped to their panel's width, so none is clipped; score axes say in words what
they show and which way is better; log axes label their decades only (minor labels overlapped);
panels that compare variants on one metric share its scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import records
from bench.catalogue import CATALOGUE

MAX_POINTS = 1500  # jittered points drawn per variant; the box and violin always use every run


def _plt() -> Any:
    import matplotlib.pyplot as plt  # the backend is the caller's: Agg for `bench report`, inline in notebooks

    return plt


def _colors(variants: list[str]) -> dict[str, Any]:
    plt = _plt()
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {v: cycle[i % len(cycle)] for i, v in enumerate(variants)}


DPI = 150  # PNG resolution; `bench report --dpi` sets another (the SVG beside it is resolution-free)


def save(fig: Any, path: Path, dpi: int = DPI) -> list[Path]:
    """Write the figure as `path` (PNG at `dpi`) and as the SVG beside it; returns both paths."""
    path.parent.mkdir(parents=True, exist_ok=True)
    svg = path.with_suffix(".svg")
    fig.savefig(path, dpi=dpi)
    fig.savefig(svg, metadata={"Date": None})  # no timestamp: the same report gives the same file
    _plt().close(fig)
    return [path, svg]


def better(metric: str) -> str:
    """'lower is better' or 'higher is better' for a registered metric ('' for an unknown one)."""
    lower = CATALOGUE["metric_lower_is_better"].get(metric)
    return "" if lower is None else ("lower is better" if lower else "higher is better")


def score_label(what: str, metric: str) -> str:
    """An axis label in words, with the metric it reads and its direction: 'best score per trial,
    lower is better' over 'fid_lenet_digits5k_1k_test'."""
    direction = better(metric)
    return f"{what}" + (f", {direction}" if direction else "") + f"\n({metric})"


def title(ax: Any, text: str, fontsize: float = 9) -> None:
    """A title wrapped to its panel's width (a character budget from the width in points and the
    font size), so a long one takes two lines instead of being clipped at the figure's edge."""
    import textwrap

    width_pt = ax.get_position().width * ax.figure.get_figwidth() * 72
    chars = max(16, int(width_pt / (0.6 * fontsize)))
    ax.set_title("\n".join(textwrap.fill(part, chars) for part in text.split("\n")), fontsize=fontsize)


def log_ticks(axis: Any) -> None:
    """Labels on a log axis that never overlap: matplotlib labels minor ticks too when the range is
    under a decade or two, and those labels run into each other. Call after plotting: the span of
    the view picks the labelled ticks (decades; 1 and 3 per decade; or 1, 2 and 5 under a decade)."""
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator, NullFormatter

    axis.axes.autoscale_view()
    lo, hi = sorted(axis.get_view_interval())
    span = np.log10(hi / lo) if lo > 0 and hi > 0 else 3.0
    subs = (1.0,) if span >= 2 else (1.0, 3.0) if span >= 1 else (1.0, 2.0, 5.0)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    axis.set_minor_formatter(NullFormatter())


def _panels(n: int, width: float = 4.5, height: float = 3.6, sharey: bool = False) -> tuple[Any, list[Any]]:
    plt = _plt()
    cols = min(n, 4)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained", sharey=sharey)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def distribution(best: pd.DataFrame) -> Any:
    """Per dataset: violin and box of per-trial best scores per variant, the runs as points."""
    metric = best.attrs["objective"]
    scored = best[best["score"].notna()]
    datasets = list(dict.fromkeys(scored["dataset"]))
    fig, axes = _panels(len(datasets), width=max(4.5, 1.4 * scored["variant"].nunique() + 1.5))
    rng = np.random.default_rng(0)
    for ax, dataset in zip(axes, datasets):
        d = scored[scored["dataset"] == dataset]
        variants = list(dict.fromkeys(d["variant"]))
        colors = _colors(variants)
        labels, finite_sets = [], []
        for i, v in enumerate(variants):
            s = d.loc[d["variant"] == v, "score"].to_numpy(float)
            f = s[np.isfinite(s)]
            finite_sets.append(f)
            labels.append(f"{v}\nn={len(s)}, {len(s) - len(f)} at +inf")
            if len(f) > 1 and np.ptp(f) > 0:
                parts = ax.violinplot([f], positions=[i], widths=0.8, showextrema=False)
                for body in parts["bodies"]:
                    body.set_facecolor(colors[v])
                    body.set_alpha(0.25)
            shown = f if len(f) <= MAX_POINTS else rng.choice(f, MAX_POINTS, replace=False)
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(shown)), shown, s=8, color=colors[v], alpha=0.7, linewidths=0)
        nonempty = [(i, f) for i, f in enumerate(finite_sets) if len(f)]
        if nonempty:
            ax.boxplot([f for _, f in nonempty], positions=[i for i, _ in nonempty], widths=0.3, showfliers=False,
                       medianprops={"color": "black"})
            allf = np.concatenate([f for _, f in nonempty])
            if allf.min() > 0 and allf.max() / allf.min() > 20:
                ax.set_yscale("log")
                log_ticks(ax.yaxis)
        ax.set_xticks(range(len(variants)), labels)
        ax.set_ylabel(score_label("best score per trial", metric))
        title(ax, f"{dataset}: best score per trial (+inf: diverged before any checkpoint)", 9)
    return fig


def secondary(best: pd.DataFrame, table: pd.DataFrame) -> Any:
    """One panel per (dataset, secondary value): each analysed trial's value at its best checkpoint
    per variant (points, with a box), the variant's best trial as a black star."""
    panels = list(table.drop_duplicates(["dataset", "metric"])[["dataset", "metric", "better"]].itertuples(index=False))
    scored = best[best["score"].notna()]
    fig, axes = _panels(len(panels), width=max(4.0, 1.1 * scored["variant"].nunique() + 1.5), height=3.4)
    rng = np.random.default_rng(0)
    for ax, (dataset, col, better) in zip(axes, panels):
        d = scored[scored["dataset"] == dataset]
        variants = list(dict.fromkeys(d["variant"]))
        colors = _colors(variants)
        shown = []
        for i, v in enumerate(variants):
            vals = d.loc[d["variant"] == v, col].to_numpy(float)
            vals = vals[np.isfinite(vals)]
            shown.append((i, vals))
            pts = vals if len(vals) <= MAX_POINTS else rng.choice(vals, MAX_POINTS, replace=False)
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(pts)), pts, s=8, color=colors[v], alpha=0.7, linewidths=0)
            top = table[(table["dataset"] == dataset) & (table["variant"] == v) & (table["metric"] == col)]["at_best_trial"]
            if len(top) and np.isfinite(top.iloc[0]):
                ax.scatter([i], [top.iloc[0]], marker="*", s=90, color="black", zorder=3,
                           label="best trial" if i == 0 else None)
        boxes = [(i, x) for i, x in shown if len(x)]
        if boxes:
            ax.boxplot([x for _, x in boxes], positions=[i for i, _ in boxes], widths=0.3, showfliers=False,
                       medianprops={"color": "black"})
        ax.set_xticks(range(len(variants)), [f"{v}\nn={len(x)}" for v, (_, x) in zip(variants, shown)])
        ax.set_ylabel(f"value at the trial's best checkpoint, {better} is better", fontsize=8)
        title(ax, f"{dataset}: {col}\n({better} is better; at each trial's best checkpoint)", 8)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def budget(curves: pd.DataFrame, metric: str) -> Any:
    """Per dataset: expected best-of-k against the budget k, with the bootstrap band."""
    datasets = list(dict.fromkeys(curves["dataset"]))
    fig, axes = _panels(len(datasets), width=5.5, height=4.0)
    for ax, dataset in zip(axes, datasets):
        c = curves[curves["dataset"] == dataset]
        variants = list(dict.fromkeys(c["variant"]))
        colors = _colors(variants)
        for v in variants:
            g = c[c["variant"] == v]
            k, e = g["k"].to_numpy(), g["expected_min"].to_numpy(float)
            ok = np.isfinite(e)
            n = int(g["n"].iloc[0])
            label = f"{v} (n={n})" + (f"; inf for k<={int(k[~ok].max())}" if (~ok).any() else "")
            ax.plot(k[ok], e[ok], color=colors[v], label=label, marker="o" if ok.sum() == 1 else None)
            med = g["median_min"].to_numpy(float)
            ax.plot(k[np.isfinite(med)], med[np.isfinite(med)], color=colors[v], linestyle=":", linewidth=1)
            lo, hi = g["lo"].to_numpy(float), g["hi"].to_numpy(float)
            band = np.isfinite(lo) & np.isfinite(hi)
            ax.fill_between(k[band], lo[band], hi[band], color=colors[v], alpha=0.2, linewidth=0)
        if c["k"].max() > 20:
            ax.set_xscale("log")
            log_ticks(ax.xaxis)
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("budget k (trials run)")
        ax.set_ylabel(score_label("expected best score of k trials", metric))
        title(ax, f"{dataset}: expected best of k trials (band: 95% bootstrap; dotted: median)", 9)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return fig


def importance_bars(imp: pd.DataFrame) -> Any:
    """One panel per (dataset, variant): hyperparameter importance."""
    groups = list(imp.groupby(["dataset", "variant"], sort=False))
    fig, axes = _panels(max(1, len(groups)), width=4.0, height=2.8)
    for ax, ((dataset, variant), g) in zip(axes, groups):
        ok = g[g["importance"].notna()].sort_values("importance")
        if ok.empty:
            ax.text(0.5, 0.5, g["note"].iloc[0] or "not computable", ha="center", va="center", wrap=True, fontsize=8, transform=ax.transAxes)
            ax.set_axis_off()
        else:
            ax.barh(ok["param"], ok["importance"], color="tab:blue")
            ax.set_xlim(0, 1)
            ax.set_xlabel("importance (share of the score's variance)")
        title(ax, f"{dataset} / {variant} ({g['evaluator'].iloc[0]}, {int(g['trials'].iloc[0])} trials)", 9)
    return fig


def learning_rate(view: pd.DataFrame, metric: str) -> Any:
    """One panel per (dataset, variant): best score against learning rate; diverged runs as crosses on top."""
    groups = list(view.groupby(["dataset", "variant"], sort=False))
    fig, axes = _panels(max(1, len(groups)), width=4.0, height=3.2, sharey=True)  # one metric: one scale to compare
    finite = view["score"][np.isfinite(view["score"].to_numpy(float))]
    top = float(finite.max()) * 1.05 if len(finite) else 1.0
    for ax, ((dataset, variant), g) in zip(axes, groups):
        s = g["score"].to_numpy(float)
        lr = g["learning_rate"].to_numpy(float)
        ok = np.isfinite(s)
        ax.scatter(lr[ok], s[ok], s=12, alpha=0.7, linewidths=0)
        if (~ok).any():
            ax.scatter(lr[~ok], np.full((~ok).sum(), top), marker="x", color="tab:red", s=20, label="diverged")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_xscale("log")
        log_ticks(ax.xaxis)
        ax.set_xlabel("learning rate (log scale)")
        if ax.get_subplotspec().is_first_col():  # one shared scale: labelled once per row
            ax.set_ylabel(score_label("best score of the trial", metric))
        title(ax, f"{dataset} / {variant}", 9)
    return fig


def best_trials(best: pd.DataFrame) -> pd.DataFrame:
    """The best scored trial of each (dataset, variant) with a finite score."""
    ok = best[np.isfinite(best["score"].astype(float))]
    return ok.loc[ok.groupby(["dataset", "variant"], sort=False)["score"].idxmin()]


def samples(best: pd.DataFrame) -> dict[str, Any]:
    """The best trial's samples.png per variant, side by side: an 8x8 grid for image datasets, a
    scatter of generated against real points for 2-D mixtures (bench/preview.py draws both).
    {"samples": figure}, or {} when no best trial's folder is on this machine."""
    plt = _plt()
    tops = best_trials(best)
    shown = []
    for _, row in tops.iterrows():
        tdir = Path(row["trial_dir"]) if row.get("trial_dir") else None
        if tdir is not None and records.sample_grid_path(tdir).is_file():
            shown.append((row, plt.imread(records.sample_grid_path(tdir))))
    if not shown:
        return {}
    metric = best.attrs["objective"]
    fig, axes = _panels(len(shown), width=3.2, height=3.5)
    for ax, (row, img) in zip(axes, shown):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
        ax.set_axis_off()
        title(ax, f"{row['dataset']} / {row['variant']} trial {int(row['trial'])}\n{metric} {row['score']:.4g}", 8)
    return {"samples": fig}
