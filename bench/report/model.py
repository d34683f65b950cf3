"""`Report`: every table of one report, as DataFrames; what `build` returns and the documents,
figures and notebook are drawn from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Report:
    """Every table of a report; figures are drawn from these by `write` (or in a notebook)."""

    frame: pd.DataFrame  # one row per trial x checkpoint (tidy.py)
    best: pd.DataFrame  # one row per trial at its best checkpoint, with `score`
    summary: pd.DataFrame  # per dataset x variant (tables.py)
    curves: pd.DataFrame  # expected best-of-k with bootstrap band (stats.py)
    mann_whitney: pd.DataFrame  # pairs of variants, Holm-corrected
    differences: pd.DataFrame  # bootstrap intervals of E_a - E_b at comparison budgets (alone, simultaneous), verdicts
    importance: pd.DataFrame  # per variant and hyperparameter (sensitivity.py)
    learning_rate: pd.DataFrame  # score against learning rate
    seeds: pd.DataFrame | None = None  # tidy frame of the seed reruns (`bench seeds`), if any
    seeds_summary: pd.DataFrame | None = None  # per variant, beside the paper's Table 2
    agreement: pd.DataFrame | None = None  # Kendall's tau between metrics' rankings (agreement.py)
    rankings: pd.DataFrame | None = None  # each metric's order of the variants (agreement.py)
    time_curves: pd.DataFrame | None = None  # expected best against device-seconds (devicetime.py)
    variance: pd.DataFrame | None = None  # training-seed against sampling spread per variant (variance.py)
    memorization: pd.DataFrame | None = None  # share of samples inside a training image's gap (variance.py)
    secondary: pd.DataFrame | None = None  # every other metric per variant: median and best trial's value (tables.secondary_table)
    pruned: pd.DataFrame | None = None  # pruned trials per variant, apart from the scores (tables.pruned_table)
    conclusions: list[str] = field(default_factory=list)  # stats.conclusions: what the CLI and report.md both say
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        return self.frame.attrs["objective"]

    @property
    def verdicts(self) -> list[str]:
        return [v for v in self.differences["verdict"] if v]
