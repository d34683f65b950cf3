"""Statistics of a study: expected best-of-k under a budget, bootstrap bands, and variant comparisons.

Expected minimum of k runs (Lucic et al. 2018, the "minimum FID as a function of budget" plots;
PROTOCOL.md): for n per-run scores sorted ascending f(1) <= ... <= f(n), k runs drawn without
replacement have E[min] = sum_i f(i) C(n-i, k-1) / C(n, k); with replacement the weight of f(i) is
((n-i+1)/n)^k - ((n-i)/n)^k. A diverged run is +inf: E[min] is +inf exactly when k draws can all be
diverged (k <= number of diverged runs without replacement; any diverged run with replacement).
Bands are percentile bootstraps over the runs (the paper: about 5,000 resamples, 95%, unverified).

Comparisons: Mann-Whitney U on per-trial best scores between every pair of variants, p-values
Holm-corrected over the pairs (Holm 1979), and bootstrap intervals for the difference of expected
best-of-k at every comparison budget. The intervals are simultaneous over the family of a
dataset's comparisons (every pair x every budget): each is a percentile interval at level
1 - (1 - LEVEL)/m for m comparisons (Bonferroni), so the chance that any of them misses its true
difference is at most 1 - LEVEL, as Holm's p-values bound the chance of any false rejection. A
verdict is written only where such an interval excludes 0, and only for pairs whose variants both
have at least MIN_N scored trials (min_n). `conclusions` turns the comparisons into the lines that
both the CLI and report.md print, so the two never say different things.
"""

from __future__ import annotations

import itertools
import math
from typing import Iterable

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import mannwhitneyu

LEVEL = 0.95


def min_n(level: float = LEVEL) -> int:
    """The fewest trials per variant at which a comparison can reach significance at 1 - level: the
    exact two-sided Mann-Whitney test of n against n trials has its smallest p-value, 2 / C(2n, n),
    when every trial of one variant beats every trial of the other (scipy's exact test gives 0.1 at
    3 vs 3 and 0.0286 at 4 vs 4, tests/test_report_verdicts.py). Below it no data could support a
    verdict at this level, so none is printed; a bootstrap interval of so few trials is too narrow
    to trust (the issue-14 study: a 3 vs 3 bootstrap interval excluded 0 where Mann-Whitney gave p = 0.4)."""
    n = 1
    while 2 / math.comb(2 * n, n) > 1 - level:
        n += 1
    return n


MIN_N = min_n()  # 4 at LEVEL = 0.95


def budget_grid(n: int, points: int = 120) -> np.ndarray:
    """Budgets k at which curves are drawn: every k up to 200 runs, else log-spaced (1, n and the
    comparison budgets included)."""
    if n <= 200:
        return np.arange(1, n + 1)
    return np.unique(np.concatenate([np.round(np.geomspace(1, n, points)).astype(int), comparison_budgets(n)]))


def min_weights(n: int, ks: Iterable[int], replace: bool = False) -> np.ndarray:
    """(n, K): weight of the i-th smallest of n scores in E[min of k] for each k (columns sum to 1)."""
    ks = np.asarray(list(ks), dtype=float)[None, :]
    i = np.arange(1, n + 1, dtype=float)[:, None]
    if replace:
        return ((n - i + 1) / n) ** ks - ((n - i) / n) ** ks
    valid = (n - i) >= (ks - 1)
    rest = np.where(valid, n - i - ks + 1, 0.0)
    # log C(n-i, k-1) - log C(n, k), in log space so n in the thousands does not overflow
    logw = gammaln(n - i + 1) - gammaln(ks) - gammaln(rest + 1) - (gammaln(n + 1) - gammaln(ks + 1) - gammaln(n - ks + 1))
    return np.where(valid, np.exp(np.where(valid, logw, 0.0)), 0.0)


def _check(values: np.ndarray, ks: np.ndarray) -> None:
    if values.ndim != 1 or len(values) == 0:
        raise ValueError("expected a non-empty 1-D array of per-run scores")
    if np.isnan(values).any():
        raise ValueError("scores contain NaN; a diverged run is +inf, a failed run is left out")
    if len(ks) and (ks.min() < 1 or ks.max() > len(values)):
        raise ValueError(f"budgets k must lie in 1..{len(values)}")


def expected_min(values: Iterable[float], ks: Iterable[int] | None = None, replace: bool = False) -> np.ndarray:
    """E[min of k runs] for each k (default 1..n), exact; +inf where k runs can all have diverged."""
    v = np.sort(np.asarray(list(values), dtype=float))
    ks = np.arange(1, len(v) + 1) if ks is None else np.asarray(list(ks), dtype=int)
    _check(v, ks)
    return _expected_min_sorted(v[None, :], ks, replace)[0]


def median_min(values: Iterable[float], ks: Iterable[int] | None = None) -> np.ndarray:
    """The median best of k runs drawn without replacement (the smallest score whose probability of
    being reached by the best of k is at least 1/2), exact. Unlike the expectation it stays finite
    while fewer than half of all k-subsets consist of diverged runs only: the typical best of k."""
    v = np.sort(np.asarray(list(values), dtype=float))
    ks = np.arange(1, len(v) + 1) if ks is None else np.asarray(list(ks), dtype=int)
    _check(v, ks)
    cdf = np.cumsum(min_weights(len(v), ks), axis=0)  # P(best of k <= f(i))
    return v[np.argmax(cdf >= 0.5 - 1e-12, axis=0)]


def _expected_min_sorted(rows: np.ndarray, ks: np.ndarray, replace: bool, weights: np.ndarray | None = None) -> np.ndarray:
    """rows: (B, n), each sorted ascending (inf last); `weights`: min_weights(n, ks, replace) when
    the caller has it. Returns (B, K)."""
    n = rows.shape[1]
    inf = np.isinf(rows)
    w = min_weights(n, ks, replace) if weights is None else weights
    out = np.where(inf, 0.0, rows) @ w  # inf positions carry 0 weight unless flagged below
    m = inf.sum(axis=1)[:, None]
    all_diverged_possible = (m > 0) if replace else (ks[None, :] <= m)
    return np.where(all_diverged_possible, np.inf, out)


def bootstrap_expected_min(values: Iterable[float], ks: Iterable[int], resamples: int = 2000, seed: int | tuple[int, ...] = 0,
                           replace: bool = False, chunk_cells: int = 4_000_000) -> np.ndarray:
    """(resamples, K): E[min of k] of bootstrap resamples of the runs (drawn with replacement)."""
    v = np.sort(np.asarray(list(values), dtype=float))
    ks = np.asarray(list(ks), dtype=int)
    _check(v, ks)
    rng = np.random.default_rng(seed)
    n = len(v)
    out = np.empty((resamples, len(ks)))
    step = max(1, chunk_cells // n)
    w = min_weights(n, ks, replace)  # the same for every chunk
    small = np.int16 if n <= np.iinfo(np.int16).max else np.int64  # the same draws, sorted by numpy's radix sort for 16-bit ints
    for start in range(0, resamples, step):
        b = min(step, resamples - start)
        idx = np.sort(rng.integers(0, n, size=(b, n)).astype(small), axis=1, kind="stable")  # v is sorted, so v[sorted idx] is a sorted resample
        out[start:start + b] = _expected_min_sorted(v[idx], ks, replace, w)
    return out


def band(replicates: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column; the bounds are observed replicate values (no interpolation
    between a finite value and +inf)."""
    a = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        return np.quantile(replicates, a, axis=0, method="lower"), np.quantile(replicates, 1 - a, axis=0, method="higher")


def budget_curves(scores: dict[tuple[str, str], np.ndarray], resamples: int = 2000, seed: int = 0,
                  level: float = LEVEL) -> tuple[pd.DataFrame, dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]]:
    """Per (dataset, variant): exact E[min of k] on budget_grid(n) with its bootstrap band, and the
    median best of k. Returns the table (dataset, variant, n, k, expected_min, lo, hi, median_min)
    and the bootstrap replicates, for comparisons."""
    rows, reps = [], {}
    for i, ((dataset, variant), v) in enumerate(scores.items()):
        ks = budget_grid(len(v))
        exact = expected_min(v, ks)
        r = bootstrap_expected_min(v, ks, resamples, (seed, i))  # independent resamples per variant
        lo, hi = band(r, level)
        reps[(dataset, variant)] = (ks, r)
        rows.append(pd.DataFrame({"dataset": dataset, "variant": variant, "n": len(v), "k": ks,
                                  "expected_min": exact, "lo": lo, "hi": hi, "median_min": median_min(v, ks)}))
    cols = ["dataset", "variant", "n", "k", "expected_min", "lo", "hi", "median_min"]
    return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=cols)), reps


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order (NaN stays NaN)."""
    p = np.asarray(list(pvalues), dtype=float)
    out = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    q = p[ok]
    m = len(q)
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * q[order]))
    res = np.empty(m)
    res[order] = adj
    out[ok] = res
    return out


def comparison_budgets(n: int) -> list[int]:
    """Budgets at which pairs of variants are compared: the paper's scale of tens of runs."""
    return [k for k in (1, 5, 10, 25, 50, 100) if k <= n] or [1]


def _diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a - b where +inf - +inf (both budgets all diverged) is a tie, 0."""
    with np.errstate(invalid="ignore"):
        d = a - b
    return np.where(np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b)), 0.0, d)


def compare(scores: dict[tuple[str, str], np.ndarray], replicates: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]],
            metric: str = "score", level: float = LEVEL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairs of variants within each dataset. Returns (mann_whitney, budget_differences):
    mann_whitney: dataset, a, b, n_a, n_b, median_a, median_b, U, p_a_lower (probability that a random
    run of a scores lower than one of b, ties half), p, p_holm (over the dataset's pairs).
    budget_differences: dataset, a, b, n_a, n_b, k, expected_min_a, expected_min_b, diff (E_a - E_b,
    exact), lo, hi (the pointwise interval at `level`), family (m: the dataset's comparisons whose
    variants both have MIN_N trials), lo_sim, hi_sim (the simultaneous interval, level 1 - (1 -
    level)/m), status ("verdict", "interval includes 0", or why none is given) and verdict ("" unless
    the simultaneous interval excludes 0 and both variants have at least min_n(level) trials)."""
    mw, bd = [], []
    need = min_n(level)
    datasets = dict.fromkeys(d for d, _ in scores)
    for dataset in datasets:
        variants = [v for d, v in scores if d == dataset]
        rows, diffs = [], []
        for a, b in itertools.combinations(variants, 2):
            x, y = scores[(dataset, a)], scores[(dataset, b)]
            res = mannwhitneyu(x, y, alternative="two-sided")
            u, p = float(res.statistic), float(res.pvalue)
            p = 1.0 if np.isnan(p) else p  # all scores tied (e.g. every run diverged): no evidence either way
            rows.append({"dataset": dataset, "a": a, "b": b, "n_a": len(x), "n_b": len(y), "median_a": float(np.median(x)),
                         "median_b": float(np.median(y)), "U": u, "p_a_lower": 1 - u / (len(x) * len(y)), "p": p})
            ka, ra = replicates[(dataset, a)]
            kb, rb = replicates[(dataset, b)]
            for k in comparison_budgets(min(len(x), len(y))):
                ea, eb = expected_min(x, [k])[0], expected_min(y, [k])[0]
                d = _diff(ra[:, np.searchsorted(ka, k)], rb[:, np.searchsorted(kb, k)])  # budget_grid holds every k here
                lo, hi = band(d[:, None], level)
                small = [f"{v} {n}" for v, n in ((a, len(x)), (b, len(y))) if n < need]
                diffs.append({"dataset": dataset, "a": a, "b": b, "n_a": len(x), "n_b": len(y), "k": k, "expected_min_a": ea,
                              "expected_min_b": eb, "diff": float(_diff(np.array([ea]), np.array([eb]))[0]),
                              "lo": float(lo[0]), "hi": float(hi[0]), "_d": d,
                              "status": f"withheld: n below {need} ({', '.join(small)})" if small else ""})
        family = sum(not r["status"] for r in diffs)
        for r in diffs:
            d = r.pop("_d")
            r["family"] = family
            if r["status"]:
                r.update(lo_sim=np.nan, hi_sim=np.nan, verdict="")
                continue
            lo, hi = band(d[:, None], 1 - (1 - level) / family)
            r.update(lo_sim=float(lo[0]), hi_sim=float(hi[0]))
            r["verdict"] = verdict(r["a"], r["b"], r["k"], r["diff"], r["lo_sim"], r["hi_sim"], metric, level,
                                   n=(r["n_a"], r["n_b"]), family=family)
            r["status"] = "verdict" if r["verdict"] else "interval includes 0"
        if rows:
            adj = holm([r["p"] for r in rows])
            for r, q in zip(rows, adj):
                r["p_holm"] = float(q)
        mw += rows
        bd += diffs
    cols_mw = ["dataset", "a", "b", "n_a", "n_b", "median_a", "median_b", "U", "p_a_lower", "p", "p_holm"]
    cols_bd = ["dataset", "a", "b", "n_a", "n_b", "k", "expected_min_a", "expected_min_b", "diff", "lo", "hi", "family",
               "lo_sim", "hi_sim", "status", "verdict"]
    return pd.DataFrame(mw, columns=cols_mw), pd.DataFrame(bd, columns=cols_bd)


def verdict(a: str, b: str, k: int, diff: float, lo: float, hi: float, metric: str, level: float = LEVEL,
            n: tuple[int, int] | None = None, family: int = 1) -> str:
    """A sentence only where the (simultaneous) bootstrap interval of E_a - E_b excludes 0."""
    if not (lo > 0 or hi < 0):
        return ""
    better, worse = (a, b) if hi < 0 else (b, a)
    runs = "run" if k == 1 else "runs"
    size = f"by {abs(diff):.3g}" if np.isfinite(diff) else "(the other can diverge in every run)"
    on = f" (n = {n[0]} and {n[1]} trials)" if n else ""
    sim = f"simultaneous {level:.0%} bootstrap interval over {family} comparisons" if family > 1 else f"{level:.0%} bootstrap interval"
    return (f"With a budget of {k} {runs}, {better} reaches a lower expected best {metric} than {worse} {size}{on}; "
            f"{sim} of {a} - {b}: [{lo:.3g}, {hi:.3g}].")


def conclusions(scores: dict[tuple[str, str], np.ndarray], differences: pd.DataFrame, level: float = LEVEL) -> list[str]:
    """What a report concludes from its comparisons, as the lines both `bench report` and report.md
    print: the verdicts, and per dataset why there is none where there is none (one variant only;
    variants below min_n(level) trials; every simultaneous interval includes 0)."""
    need = min_n(level)
    datasets = list(dict.fromkeys(d for d, _ in scores))
    out: list[str] = []
    for dataset in datasets:
        where = f"{dataset}: " if len(datasets) > 1 else ""
        n = {v: len(x) for (d, v), x in scores.items() if d == dataset}
        if len(n) < 2:
            (v, nv), = n.items()
            out.append(f"{where}one variant only ({v}, n = {nv}): nothing to compare.")
            continue
        d = differences[differences["dataset"] == dataset]
        lines = [x for x in d["verdict"] if x]
        out += [where + x for x in lines]
        small = {v: m for v, m in n.items() if m < need}
        if small:
            names = ", ".join(f"{v} (n = {m})" for v, m in small.items())
            out.append(f"{where}no verdict on pairs with {names}: a variant needs at least {need} scored trials before any "
                       f"comparison is judged (with fewer, no outcome of an exact two-sided Mann-Whitney test is significant "
                       f"at {1 - level:.2g}).")
        tested = d[d["status"].isin(["verdict", "interval includes 0"])]
        if not tested.empty and not lines:
            names = ", ".join(v for v in n if v not in small)
            out.append(f"{where}no verdict among {names}: every simultaneous {level:.0%} bootstrap interval of a difference "
                       f"of expected best-of-k ({int(tested['family'].iloc[0])} comparisons, Bonferroni) includes 0, so these "
                       f"trials do not tell them apart at any budget compared.")
    return out
