"""Rank agreement across metrics: does a ranking of the variants survive a change of metric?

Stein et al. 2023 ("Exposing flaws of generative model evaluation metrics") found that rankings of
generative models change with the feature space and the metric. For every dataset of a report with
two or more variants and two or more metrics, each metric ranks the variants by two summaries of
the per-trial best values (each trial's best checkpoint *in that metric*, oriented so that lower is
better; a trial with no finite value in it is +inf, as a diverged run):

    best-of-k   the expected best of k trials (stats.expected_min; k = the fewest trials of any variant)
    median      the median per-trial best

and for each pair of metrics and each summary, Kendall's tau-b between the two rankings
(scipy.stats.kendalltau; 1 = same order, -1 = reversed), a percentile-bootstrap interval
(trials resampled with replacement within each variant, the same trials for both metrics, since
both were measured on them), and the pairs of variants whose order flips. Tau is NaN where one
metric ties every variant (nothing to correlate).
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from bench.report import stats
from bench.report.tidy import analysed_states

SUMMARIES = ("best-of-k", "median")
COLUMNS = ["dataset", "summary", "k", "metric_a", "metric_b", "variants", "tau", "lo", "hi", "flips"]


def lower_is_better(metric: str) -> bool:
    """The registry's direction (from the torch-free catalogue); a metric no longer registered is taken
    as lower-is-better."""
    from bench.catalogue import CATALOGUE

    return bool(CATALOGUE["metric_lower_is_better"].get(metric, True))


def trial_bests(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """One row per scored trial: dataset, variant, trial and, per metric, the trial's best value over
    its checkpoints oriented lower-is-better (+inf when the trial has no finite value of it)."""
    scored = frame[frame["state"].isin(analysed_states(bool(frame.attrs.get("include_pruned"))))]
    keys = ["dataset", "variant", "study", "trial"]
    out = scored[keys].drop_duplicates().set_index(keys)
    for m in metrics:
        sign = 1.0 if lower_is_better(m) else -1.0
        v = sign * scored[m].astype(float)
        out[m] = v.where(np.isfinite(v)).groupby([scored[k] for k in keys]).min().reindex(out.index).fillna(np.inf)
    return out.reset_index()


def _summary(values: np.ndarray, how: str, k: int) -> np.ndarray:
    """values (B, n) -> (B,): expected best of k, or median (inf ranks last)."""
    rows = np.sort(values, axis=1)
    if how == "median":
        return np.median(rows, axis=1)
    return stats._expected_min_sorted(rows, np.array([k]), False)[:, 0]


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    big = np.finfo(float).max  # scipy ranks +inf correctly, but inf - inf arithmetic inside must not appear
    x, y = np.where(np.isinf(x), big, x), np.where(np.isinf(y), big, y)
    if len(set(x.tolist())) < 2 or len(set(y.tolist())) < 2:
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(kendalltau(x, y).statistic)


def tau_b_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall's tau-b of each row pair of x, y (R, V), vectorized over the bootstrap replicates:
    sum over pairs of sign(dx) sign(dy) / sqrt(pairs untied in x * pairs untied in y); NaN where one
    side ties throughout. Equals scipy's kendalltau row by row (tests); scipy gives the point value."""
    i, j = np.triu_indices(x.shape[1], 1)
    with np.errstate(invalid="ignore"):
        sx, sy = np.sign(x[:, i] - x[:, j]), np.sign(y[:, i] - y[:, j])
    sx, sy = np.nan_to_num(sx), np.nan_to_num(sy)  # inf - inf: both diverged, a tie
    den = np.sqrt(np.abs(sx).sum(1) * np.abs(sy).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (sx * sy).sum(1) / np.where(den > 0, den, 1), np.nan)


def _flips(variants: list[str], x: np.ndarray, y: np.ndarray) -> str:
    out = []
    for i, j in itertools.combinations(range(len(variants)), 2):
        if np.sign(x[i] - x[j]) * np.sign(y[i] - y[j]) < 0:
            out.append(f"{variants[i]}/{variants[j]}")
    return "; ".join(out)


def rankings(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per dataset, summary and metric: the variants in order, best first (dataset, summary, k, metric, order)."""
    rows = []
    tb = trial_bests(frame, metrics)
    for dataset, g in tb.groupby("dataset", sort=False):
        groups = dict(list(g.groupby("variant", sort=False)))
        k = min(len(v) for v in groups.values())
        for how in SUMMARIES:
            for m in metrics:
                vals = {v: _summary(d[m].to_numpy(float)[None, :], how, k)[0] for v, d in groups.items()}
                rows.append({"dataset": dataset, "summary": how, "k": k if how == "best-of-k" else np.nan, "metric": m,
                             "order": ", ".join(sorted(vals, key=lambda v: (vals[v], v)))})
    return pd.DataFrame(rows, columns=["dataset", "summary", "k", "metric", "order"])


def agreement(frame: pd.DataFrame, metrics: list[str] | None = None, resamples: int = 2000, seed: int = 0,
              level: float = stats.LEVEL) -> pd.DataFrame:
    """Kendall's tau between the variants' rankings under each pair of metrics, per dataset and summary,
    with a bootstrap interval and the flipped pairs (columns COLUMNS). Empty when no dataset has two
    variants and two metrics."""
    metrics = [m for m in (metrics or frame.attrs.get("metrics", [])) if m in frame]
    scored = frame[frame["state"].isin(analysed_states(bool(frame.attrs.get("include_pruned"))))]
    if len(metrics) < 2 or scored.groupby("dataset")["variant"].nunique().max() < 2:
        return pd.DataFrame(columns=COLUMNS)  # nothing to agree on
    tb = trial_bests(frame, metrics)
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, g in tb.groupby("dataset", sort=False):
        groups = {v: d[metrics].to_numpy(float) for v, d in g.groupby("variant", sort=False)}  # (n_v, M)
        if len(groups) < 2:
            continue
        variants = list(groups)
        k = min(len(a) for a in groups.values())
        # the same resampled trials serve every metric: (R, n_v) indices per variant
        idx = {v: rng.integers(0, len(a), size=(resamples, len(a))) for v, a in groups.items()}
        for how in SUMMARIES:
            point = np.array([[_summary(groups[v][None, :, j], how, k)[0] for v in variants] for j in range(len(metrics))])  # (M, V)
            boot = np.stack([np.stack([_summary(groups[v][idx[v], j], how, k) for v in variants], axis=1)
                             for j in range(len(metrics))])  # (M, R, V)
            for a, b in itertools.combinations(range(len(metrics)), 2):
                taus = tau_b_rows(boot[a], boot[b])
                ok = taus[~np.isnan(taus)]
                lo, hi = (stats.band(ok[:, None], level) if len(ok) else (np.array([np.nan]), np.array([np.nan])))
                rows.append({"dataset": dataset, "summary": how, "k": k if how == "best-of-k" else np.nan,
                             "metric_a": metrics[a], "metric_b": metrics[b], "variants": len(variants),
                             "tau": _tau(point[a], point[b]), "lo": float(lo[0]), "hi": float(hi[0]),
                             "flips": _flips(variants, point[a], point[b])})
    return pd.DataFrame(rows, columns=COLUMNS)
