"""The seed's Figure 1 for 2-D studies: how the generator's density moves over training (Metz et al.
2017, "Unrolled generative adversarial networks", figure 1: a GAN rotating through the modes of a
mixture where the unrolled GAN spreads over all of them).

For the best trial of each variant, one row of panels, the density of the generated points at its
checkpoints (the 2-D histograms the training loop keeps, records.densities; at most MAX_PANELS,
evenly spaced, first and last always shown) on a log colour scale with the bins the real test points
occupy outlined in white, and under it the modes covered
at every checkpoint (the metric of the trial's log that counts modes, `Metric.counts_modes`). Studies of image data leave
no densities, and the report has no such figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import records, registries
from bench.report.figures import _plt, best_trials, title
from bench.report.tidy import log_evaluations

MAX_PANELS = 10


def modes_per_step(tdir: Path) -> tuple[str, dict[int, float]]:
    """(metric, {step: modes covered}) from a trial's eval records as the report reads them
    (tidy.log_evaluations: those its manifest vouches for): the first metric logged that counts
    modes (`Metric.counts_modes`, e.g. modes_ring8_10k), the last record of each step (a `bench eval
    --again` supersedes); ("", {}) if none."""
    names = set(registries.names("metrics"))
    out: dict[str, dict[int, float]] = {}
    for r in log_evaluations(tdir):
        for k, v in r.items():
            if isinstance(v, (int, float)) and k in names and registries.metric_counts_modes(k):
                out.setdefault(k, {})[int(r["step"])] = float(v)
    if not out:
        return "", {}
    name = sorted(out)[0]
    return name, dict(sorted(out[name].items()))


def shown_steps(steps: list[int], most: int = MAX_PANELS) -> list[int]:
    """At most `most` of the steps, evenly spaced, the first and the last among them."""
    if len(steps) <= most:
        return steps
    return [steps[i] for i in sorted(set(np.linspace(0, len(steps) - 1, most).round().astype(int)))]


def figure(best: pd.DataFrame) -> dict[str, Any]:
    """{"dynamics": figure} when a best trial left densities on this machine, else {}."""
    rows = []
    for _, row in best_trials(best).iterrows():
        tdir = Path(row["trial_dir"]) if row.get("trial_dir") else None
        dens = records.densities(tdir) if tdir is not None else []
        if dens:
            rows.append((row, dens, *modes_per_step(tdir)))
    if not rows:
        return {}
    plt = _plt()
    cols = max(len(shown_steps([s for s, _ in dens])) for _, dens, _, _ in rows)
    fig = plt.figure(figsize=(1.6 * cols + 0.6, 2.75 * len(rows)), layout="constrained")
    grid = fig.add_gridspec(2 * len(rows), cols, height_ratios=[1.6, 1.0] * len(rows))
    metric = best.attrs.get("objective", "")
    for r, (row, dens, modes_metric, modes) in enumerate(rows):
        paths = dict(dens)
        steps = shown_steps(sorted(paths))
        for c, step in enumerate(steps):
            d = records.load_arrays(paths[step])
            ax = fig.add_subplot(grid[2 * r, c])
            ex, ey = d["edges_x"], d["edges_y"]
            ax.imshow(np.log1p(d["counts"].astype(float)).T, origin="lower", extent=(ex[0], ex[-1], ey[0], ey[-1]),
                      cmap="viridis", interpolation="nearest")
            if "reference_counts" in d:  # where the real points are: an outline of the bins they occupy
                cx, cy = (ex[:-1] + ex[1:]) / 2, (ey[:-1] + ey[1:]) / 2
                ax.contour(cx, cy, (d["reference_counts"] > 0).T.astype(float), levels=[0.5], colors="white",
                           linewidths=0.6)
            ax.set_xticks([])
            ax.set_yticks([])
            label = f"step {step}" + (f"\n{modes[step]:g} modes" if step in modes else "")
            ax.set_title(label, fontsize=7)
            if c == 0:
                ax.set_ylabel(f"{row['variant']}\ntrial {int(row['trial'])}", fontsize=8)
        ax = fig.add_subplot(grid[2 * r + 1, :])
        if modes:
            ax.plot(list(modes), list(modes.values()), marker="o", markersize=3)
            ax.set_ylim(bottom=0, top=max(modes.values()) + 1)
            ax.set_ylabel(modes_metric, fontsize=7)
        else:
            ax.text(0.5, 0.5, "no modes_* metric in this study", ha="center", va="center", fontsize=8, transform=ax.transAxes)
        ax.set_xlabel("D step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        title(ax, f"{row['dataset']} / {row['variant']}: modes covered per checkpoint (best {metric} {row['score']:.4g})", 8)
    return {"dynamics": fig}
