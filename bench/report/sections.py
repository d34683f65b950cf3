"""The report sections of issue 17, as document blocks (document.py renders them in report.md and
report.html): rank agreement across metrics, the best score within a device-time budget, the
training-seed against sampling variance split, and the memorization check; and issue 15's
training dynamics of 2-D studies (dynamics.py). Each section appears
only when its table is there."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.report.model import Report


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)) and math.isinf(v):
        return "inf"
    return f"{v:.3g}"


Block = tuple[str, Any]


def blocks(rep: Report, figs: dict[str, str]) -> list[Block]:
    """The sections whose tables the report has, in the order they are read."""
    return (_agreement_blocks(rep) + _device_time_blocks(rep, figs) + _variance_blocks(rep)
            + _memorization_blocks(rep, figs) + _dynamics_blocks(figs))


def _agreement_blocks(rep: Report) -> list[Block]:
    """Rank agreement across metrics: each metric's ranking of the variants and Kendall's tau between them."""
    if rep.agreement is None:
        return []
    out: list[Block] = []
    a = rep.agreement
    out.append(("h2", "Rank agreement across metrics"))
    out.append(("p", "Does the ranking of the variants survive a change of metric or feature space (Stein et al. "
                     "2023)? Each metric ranks the variants by the expected best of k trials (k = the fewest trials "
                     "of any variant) and by the median per-trial best, each trial taken at its own best checkpoint "
                     "in that metric. Kendall's tau-b between two metrics' rankings: 1 = the same order, -1 = "
                     f"reversed; {rep.settings['level']:.0%} percentile-bootstrap interval over "
                     f"{rep.settings['resamples']} resamples of the trials; flips: the pairs of variants whose order "
                     "differs."))
    if rep.rankings is not None:
        r = rep.rankings
        out.append(("table", r.assign(k=[_num(k) for k in r["k"]])[["dataset", "summary", "k", "metric", "order"]]
                    .rename(columns={"order": "variants, best first"})))
    out.append(("table", pd.DataFrame({
        "dataset": a["dataset"], "summary": a["summary"], "metric a": a["metric_a"], "metric b": a["metric_b"],
        "tau": [_num(v) or "n/a (ties)" for v in a["tau"]],
        "interval": [f"[{_num(lo)}, {_num(hi)}]" if not math.isnan(lo) else "" for lo, hi in zip(a["lo"], a["hi"])],
        "order flips": [f or "none" for f in a["flips"]]})))
    disagree = a[a["flips"].astype(bool)]
    tied = int(a["tau"].isna().sum())
    if tied:
        out.append(("p", f"{tied} pair(s): one metric ties every variant (e.g. a coverage of 0 for all), so tau is "
                         "undefined there and nothing flips."))
    if disagree.empty:
        out.append(("p", "No pair of metrics orders two variants in opposite ways under either summary."))
    else:
        out.append(("p", f"{len(disagree)} of {len(a)} metric pairs (counting both summaries) order some variants "
                         "differently: a ranking under one metric alone would not carry over."))
    return out


def _device_time_blocks(rep: Report, figs: dict[str, str]) -> list[Block]:
    """The expected best score within T device-seconds, at a quarter, half and all of the common time."""
    if rep.time_curves is None:
        return []
    out: list[Block] = []
    m = rep.metric
    c = rep.time_curves
    budget = float(rep.settings.get("budget_seconds") or 0.0)
    out.append(("h2", "Expected best score against device time"))
    out.append(("p", f"The trials of each variant run in a random order ({rep.settings['resamples']} orders), each "
                     "costing its recorded seconds; the best score among the trials finished within T device-seconds, "
                     "averaged over the orders (expected; +inf while some order has no trial finished) and its median. "
                     "Variants with costlier steps get fewer trials in the same time, so this compares them at equal "
                     "compute, where the curve against trials compares them at an equal number of settings."
                     + (f" The study's budget is {budget:g} device-seconds per variant." if budget > 0 else "")))
    if "device_time" in figs:
        out.append(("img", (figs["device_time"], "expected best score against device-seconds")))
    from bench.report.devicetime import at_budgets

    common = c.groupby("dataset")["total_seconds"].min()  # every variant of the dataset can spend it
    rows = []
    for dataset, t in common.items():
        marks = sorted({t / 4, t / 2, t} | ({budget} if budget > 0 else set()))
        rows.append(at_budgets(c[c["dataset"] == dataset], marks))
    t = pd.concat(rows, ignore_index=True)
    out.append(("table", pd.DataFrame({
        "dataset": t["dataset"], "variant": t["variant"], "device-seconds": [_num(v) for v in t["seconds"]],
        "trials finished (mean)": [_num(v) for v in t["trials_done"]], f"expected best {m}": [_num(v) for v in t["expected_best"]],
        f"median best {m}": [_num(v) for v in t["median_best"]], "all trials (s)": [_num(v) for v in t["total_seconds"]]})))
    return out


def _variance_blocks(rep: Report) -> list[Block]:
    """Training-seed against sampling variance of each variant's best configuration."""
    if rep.variance is None:
        return []
    out: list[Block] = []
    m = rep.metric
    v = rep.variance
    out.append(("h2", "Training-seed against sampling variance"))
    out.append(("p", f"Spread of {m} for each variant's best configuration. Seed reruns: the standard deviation of "
                     "the best score over the phase-3 reruns (`bench seeds`, new training seeds). Sampling: the standard "
                     "deviation of one checkpoint (the best of the best search trial) scored with K evaluation seeds "
                     "(`bench probe`, new z and metric randomness). Each rerun was scored with one z, so its variance "
                     "holds both parts; the training part is estimated as sqrt(max(0, seed² - sampling²)), and the larger "
                     "part dominates. A blank cell: that measurement is missing (run `bench seeds` or `bench probe`)."))
    out.append(("table", pd.DataFrame({
        "dataset": v["dataset"], "variant": v["variant"], "seed reruns": v["reruns"], "std over seeds": [_num(x) for x in v["seed_std"]],
        "z seeds": v["z_seeds"], "std over z (sampling)": [_num(x) for x in v["sampling_std"]],
        "training part": [_num(x) for x in v["training_std"]], "dominates": v["dominates"]})))
    said = [f"{a}: {d}" for a, d in zip(v["variant"], v["dominates"]) if d]
    if said:
        out.append(("p", "Dominant source of variance per variant: " + "; ".join(said) + "."))
    return out


def _memorization_blocks(rep: Report, figs: dict[str, str]) -> list[Block]:
    """The memorization check of `bench probe`: the share of samples nearer a training image than it is to its neighbours."""
    if rep.memorization is None:
        return []
    out: list[Block] = []
    t = rep.memorization
    out.append(("h2", "Memorization check"))
    out.append(("p", "For the best checkpoint of each variant's best trial (`bench probe`): the share of generated "
                     "samples whose nearest training image t (in the feature space named) is closer to them than t is "
                     "to its own nearest other training image. A generator that copies training images scores 1. One "
                     "that does not copy still scores well above 0 (a fresh sample and its nearest training image are "
                     "often mutual nearest neighbours), so the same share for the held-out test images is the baseline: "
                     "a share well above it points to copies. Pictures: the 8 samples nearest their training neighbour "
                     "(relative to its gap), above those training images."))
    out.append(("table", pd.DataFrame({
        "dataset": t["dataset"], "variant": t["variant"], "trial": t["source_trial"], "step": t["step"],
        "feature space": t["feature_space"], "samples": t["samples"], "training images": t["train_images"],
        "share (generated)": [_num(x) for x in t["share"]], "share (test images)": [_num(x) for x in t["test_share"]]})))
    for variant in t["variant"]:
        if f"nearest-{variant}" in figs:
            out.append(("img", (figs[f"nearest-{variant}"], f"{variant}: samples (top) and their nearest training images (bottom)")))
    return out


def _dynamics_blocks(figs: dict[str, str]) -> list[Block]:
    """Training dynamics of 2-D studies: the generated density over training and the modes covered."""
    if "dynamics" not in figs:
        return []
    out: list[Block] = []
    out.append(("h2", "Training dynamics on 2-D data"))
    out.append(("p", "The density of the generated points (log scale; the fixed evaluation z) at the checkpoints of "
                     "each variant's best trial, and under it the modes covered at every checkpoint, as the seed's "
                     "Figure 1 (Metz et al. 2017) draws a generator moving from mode to mode."))
    out.append(("img", (figs["dynamics"], "generated density over training, and modes covered per checkpoint")))
    return out
