"""report.md and report.html from one list of blocks, so both say the same thing.

Every string that comes from a study (names, hyperparameter values, failure reasons, storage URLs)
is escaped: HTML entities in report.html, table pipes and angle brackets in report.md.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report import sections
from bench.report.budgets import unequal_budgets
from bench.report.model import Report
from bench.report.stats import comparison_budgets, min_n
from bench.report.tables import PAPER_NOTE, fmt

Block = tuple[str, Any]  # ("h1"|"h2"|"p"|"ul"|"table"|"img", payload)


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return fmt(v)


def _pct(v: float) -> str:
    return "" if v is None or math.isnan(v) else f"{v:.0f}%"


def blocks(rep: Report, figs: dict[str, str]) -> list[Block]:
    """The report, section by section, in the order it is read."""
    return (_overview_blocks(rep) + _distribution_blocks(rep, figs) + _seed_blocks(rep) + _budget_blocks(rep, figs)
            + _comparison_blocks(rep) + _sensitivity_blocks(rep, figs) + _sample_blocks(figs)
            + sections.blocks(rep, figs)  # rank agreement, device time, variance split, memorization (issue 17)
            + _failure_blocks(rep))


def _overview_blocks(rep: Report) -> list[Block]:
    """Title, source, objective and search settings, an unequal-budget warning, log records left out
    for want of a seal, feature spaces, and how diverged, failed, pruned and lost trials count."""
    m, best = rep.metric, rep.best
    studies = list(dict.fromkeys(rep.frame["study"]))
    out: list[Block] = [("h1", f"Report: {', '.join(studies)}")]
    first = best.iloc[0]
    lost = int((best["state"] == "lost").sum())
    out.append(("p", f"Source: {rep.frame.attrs.get('source', '')}. Objective: {m} (lower is better), the best over each "
                     f"trial's checkpoints. Sampler: {first['sampler']}; pruner: {first['pruner']}; search space: {first['space']}."))
    unequal = unequal_budgets(best)
    if unequal:
        out.append(("p", f"Warning: {unequal}."))
    unsealed = list(rep.frame.attrs.get("unsealed") or [])
    if unsealed:
        out.append(("p", f"Left out: {len(unsealed)} part(s) of trials' metrics logs that no seal vouches for (written or "
                         "changed after the trial ended, not by `bench eval`); none of their records is in this report: "
                         + "; ".join(unsealed[:3]) + ("; ..." if len(unsealed) > 3 else "") + ". `bench audit` names what changed."))
    spaces = rep.frame.attrs.get("feature_spaces") or {}
    if spaces:
        out.append(("p", "Feature spaces (the same for every checkpoint whose metrics log is on this machine; a report "
                         "refuses to pool values scored in different ones): " + "; ".join(
                             f"{name}: {p.get('extractor', '')}, weights sha256 {p.get('sha256', '')}"
                             + (f", {p['code']}" if p.get("code") else "") for name, p in spaces.items()) + "."))
    out.append(("p", "A diverged trial keeps the best checkpoint it reached before diverging, or counts as +inf when it "
                     "reached none; it is never dropped. Failed trials (an error, not a property of the variant) are "
                     "counted but carry no score. Pruned trials are counted and shown apart (below) unless the report "
                     "counts them (--include-pruned)." + (f" {lost} trial(s) lost with a dead worker and retried are left out." if lost else "")))
    return out


def _distribution_blocks(rep: Report, figs: dict[str, str]) -> list[Block]:
    """Each variant's per-trial best scores (quartiles, mean ± std, best configuration), then its other
    metrics and the pruned trials apart."""
    m, s = rep.metric, rep.summary
    out: list[Block] = [("h2", "Score distributions")]
    cols = {"dataset": "dataset", "variant": "variant", "trials": "trials", "n": "n", "diverged_pct": "diverged",
            f"{m}_min": "min", f"{m}_q25": "q25", f"{m}_median": "median", f"{m}_q75": "q75", f"{m}_max": "max"}
    t = s[list(cols)].rename(columns=cols).copy()
    t["diverged"] = s["diverged_pct"].map(_pct)
    t["mean ± std"] = [("" if math.isnan(a) else f"{a:.3g} ± {b:.2g}" if not math.isnan(b) else f"{a:.3g}")
                       for a, b in zip(s[f"{m}_mean"], s[f"{m}_std"])]
    if "paper_table2" in s:
        t["paper (Table 2)"] = s["paper_table2"]
    t["best trial"] = s["best_trial"]
    t["best configuration"] = s["best_hparams"]
    out.append(("table", t))
    counted = "complete, diverged and pruned" if rep.settings.get("include_pruned") else "complete and diverged"
    out.append(("p", f"Quartiles are over the per-trial best {m} of the {counted} trials (n; inf: diverged); "
                     "mean ± std over the finite ones."))
    if "paper_table2" in s:
        out.append(("p", PAPER_NOTE))
    if "distribution" in figs:
        out.append(("img", (figs["distribution"], f"best {m} per trial, per variant")))
    return out + _secondary_blocks(rep, figs) + _pruned_blocks(rep)


def _seed_blocks(rep: Report) -> list[Block]:
    """Phase 3: each variant's chosen configuration rerun with new seeds (the paper's Table 2)."""
    if rep.seeds_summary is None:
        return []
    m, ss = rep.metric, rep.seeds_summary
    st = ss[["dataset", "variant", "reruns", "diverged", "failed"]].copy()
    st["mean ± std"] = [("" if math.isnan(a) else f"{a:.4g} ± {b:.2g}" if not math.isnan(b) else f"{a:.4g}")
                        for a, b in zip(ss[f"{m}_mean"], ss[f"{m}_std"])]
    st["min"], st["median"], st["max"] = ss[f"{m}_min"], ss[f"{m}_median"], ss[f"{m}_max"]
    if ss["paper_table2"].astype(bool).any():
        st["paper (Table 2)"] = ss["paper_table2"]
    st["configuration"] = ss["hparams"]
    return [("h2", "Seed reruns (the paper's phase 3)"),
            ("p", f"Each variant's chosen configuration rerun with new seeds (`bench seeds`): best {m} per rerun, "
                  "mean ± std over the finite ones. This is what Table 2 of the paper reports."),
            ("table", st)]


def _budget_blocks(rep: Report, figs: dict[str, str]) -> list[Block]:
    """Expected best score of k trials against k, with its bootstrap band and the median best of k."""
    m = rep.metric
    out: list[Block] = [("h2", "Expected best score against budget")]
    out.append(("p", f"For a budget of k trials, the expected minimum {m} of k trials drawn without replacement from "
                     "the n observed (exact, Lucic et al. 2018), with a "
                     f"{rep.settings['level']:.0%} percentile-bootstrap band over {rep.settings['resamples']} resamples; "
                     "and the median best of k (exact)."))
    if "budget" in figs:
        out.append(("img", (figs["budget"], "expected best score against budget")))
    ks = set(comparison_budgets(int(rep.curves["n"].max())))
    c = rep.curves[rep.curves["k"].isin(ks)]
    out.append(("table", c.assign(band=[f"[{_cell(a)}, {_cell(b)}]" for a, b in zip(c["lo"], c["hi"])])
                [["dataset", "variant", "n", "k", "expected_min", "band", "median_min"]]
                .rename(columns={"expected_min": "expected best", "median_min": "median best"})))
    if np.isinf(c["expected_min"]).any():
        out.append(("p", "An expected best of inf means that k trials can all have diverged before any checkpoint "
                         "(k is at most the number of such trials): the expectation counts that case as +inf. The "
                         "median best of k (dotted in the figure) is the typical best of k trials and stays finite "
                         "while fewer than half of the draws of k trials are all diverged."))
    return out


def _comparison_blocks(rep: Report) -> list[Block]:
    """The verdicts (the lines `bench report` prints), their rules, Mann-Whitney tests and the differences."""
    m = rep.metric
    out: list[Block] = [("h2", "Comparisons")]
    out.append(("ul", rep.conclusions))  # the lines `bench report` prints (stats.conclusions)
    out += _comparison_rules(rep)
    if not rep.mann_whitney.empty:
        out.append(("p", "Mann-Whitney U (two-sided) on per-trial best scores, p-values Holm-corrected over the pairs of "
                         "each dataset; P(a lower) is the chance that a random trial of a scores lower than one of b (ties count half)."))
        mw = rep.mann_whitney.rename(columns={"p_a_lower": "P(a lower)", "p_holm": "p (Holm)"})
        out.append(("table", mw[["dataset", "a", "b", "n_a", "n_b", "median_a", "median_b", "P(a lower)", "p", "p (Holm)"]]))
        unequal = unequal_budgets(rep.best)
        if unequal:
            out.append(("p", f"These comparisons rest on unequal n (n_a, n_b above): {unequal}."))
        d = rep.differences
        out.append(("p", f"Difference of expected best {m} (a - b) at budgets k: the {rep.settings['level']:.0%} bootstrap "
                         "interval of each comparison alone, and the simultaneous one over the dataset's m comparisons that "
                         "the verdicts rest on (status: why a comparison has no verdict):"))
        out.append(("table", d.assign(interval=[f"[{_cell(a)}, {_cell(b)}]" for a, b in zip(d["lo"], d["hi"])],
                                      simultaneous=[f"[{_cell(a)}, {_cell(b)}]" if not math.isnan(a) else ""
                                                    for a, b in zip(d["lo_sim"], d["hi_sim"])])
                    [["dataset", "a", "b", "n_a", "n_b", "k", "expected_min_a", "expected_min_b", "diff", "interval", "family",
                      "simultaneous", "status"]].rename(columns={"family": "m"})))
    return out


def _sensitivity_blocks(rep: Report, figs: dict[str, str]) -> list[Block]:
    """Hyperparameter importance per variant and each trial's best score against its learning rate."""
    m, imp = rep.metric, rep.importance
    out: list[Block] = [("h2", "Sensitivity")]
    out.append(("p", f"Hyperparameter importance per variant (Optuna's {rep.settings['evaluator']} evaluator) on the "
                     "trials with a finite score; and each trial's best score against its learning rate, diverged "
                     "trials as red crosses along the top (the paper's sensitivity view)."))
    if "importance" in figs:
        out.append(("img", (figs["importance"], "hyperparameter importance")))
    out.append(("table", imp[["dataset", "variant", "param", "importance", "trials", "note"]]))
    if "learning_rate" in figs:
        out.append(("img", (figs["learning_rate"], f"best {m} against learning rate")))
    return out


def _sample_blocks(figs: dict[str, str]) -> list[Block]:
    if "samples" not in figs:
        return []
    return [("h2", "Samples of the best trial per variant"),
            ("p", "From the fixed evaluation z: an 8x8 grid for images; generated (blue) against real (grey) "
                  "points for 2-D mixtures."),
            ("img", (figs["samples"], "samples of the best trial of each variant"))]


def _failure_blocks(rep: Report) -> list[Block]:
    """Diverged and failed trials with their reasons, and what the report counted and wrote."""
    best = rep.best
    out: list[Block] = []
    failed = best[best["state"].isin(["failed", "diverged"]) & best["reason"].astype(bool)]
    if not failed.empty:
        out.append(("h2", "Diverged and failed trials"))
        out.append(("table", failed[["dataset", "variant", "trial", "state", "reason"]].head(50)))
    scored = int(best["score"].notna().sum())
    out.append(("p", f"{len(best)} trials, {scored} scored, {len(rep.frame)} checkpoint rows. Files: summary.csv, "
                     "trials.parquet (one row per trial x checkpoint), budget.csv, comparisons.csv, importance.csv, "
                     "figures/, report.ipynb (executed; open it to explore with bench.report)."))
    return out


def _secondary_blocks(rep: Report, figs: dict[str, str]) -> list[Block]:
    """Every metric beside the objective, per variant (summary.csv holds the same as columns)."""
    t = rep.secondary
    if t is None:
        return []
    out: list[Block] = [("h2", "Secondary metrics"),
                        ("p", f"Every other metric of the study, those added later with `bench eval`, and their parts "
                              f"(precision, recall, density): each trial taken at its best checkpoint by {rep.metric} (the "
                              "checkpoint the study selects), the median over the trials that have the value, and the value "
                              "of the variant's best trial. summary.csv holds them as <metric>_median and <metric>_best_trial."),
                        ("table", pd.DataFrame({
                            "dataset": t["dataset"], "variant": t["variant"], "metric": t["metric"], "better": t["better"],
                            "trials": t["trials"], "median": t["median"], "best trial": t["best_trial"],
                            "best trial's value": t["at_best_trial"]}))]
    if "secondary" in figs:
        out.append(("img", (figs["secondary"], "secondary metrics per variant")))
    return out


def _pruned_blocks(rep: Report) -> list[Block]:
    """Pruned trials, apart from the scores: their count per variant and how far they got."""
    p = rep.pruned
    if p is None:
        return []
    total = int(p["pruned"].sum())
    if rep.settings.get("include_pruned"):
        how = ("This report was asked to count them (--include-pruned): their best score before pruning enters the "
               "distributions, budget curves and tests as if it were the score of a full run.")
    else:
        how = ("Their scores come from partial training, so they are left out of the distributions, budget curves, "
               "tests, importance and rank agreement, which use the trials run to full length (n); "
               "`bench report --include-pruned` counts them.")
    return [("h2", "Pruned trials (apart)"),
            ("p", f"{total} trial(s) were stopped early by the pruner. {how}"),
            ("table", pd.DataFrame({
                "dataset": p["dataset"], "variant": p["variant"], "pruned": p["pruned"], "of trials": p["trials"],
                "last checkpoint (median)": p["last_step_median"],
                "range": [f"{_cell(a)}-{_cell(b)}" for a, b in zip(p["last_step_min"], p["last_step_max"])],
                "best before pruning (median)": p["partial_median"], "min": p["partial_min"]}))]


def _comparison_rules(rep: Report) -> list[Block]:
    """Why a verdict is given or withheld: the minimum n and the family-wise correction."""
    level = rep.settings["level"]
    need = rep.settings.get("min_n", min_n(level))
    resamples = rep.settings["resamples"]
    widest = int(rep.differences["family"].max()) if not rep.differences.empty else 0
    text = (f"A verdict needs at least {need} scored trials in each of the two variants: the exact two-sided Mann-Whitney "
            f"test of n against n trials has its smallest p-value, 2 / C(2n, n), when every trial of one variant beats "
            f"every trial of the other: {2 / math.comb(2 * need - 2, need - 1):.2g} at {need - 1} vs {need - 1} and "
            f"{2 / math.comb(2 * need, need):.2g} at {need} vs {need}, so with fewer trials no outcome could be significant "
            f"at {1 - level:.2g}, and a bootstrap interval of so few trials is not to be trusted either. The bootstrap "
            f"intervals behind the verdicts are simultaneous over each dataset's family of comparisons (every pair of "
            f"variants with enough trials x every budget k): each is a percentile interval at level 1 - {1 - level:.2g}/m "
            f"for m comparisons (Bonferroni), so all of them hold together with probability at least {level:.0%}; the "
            f"Mann-Whitney p-values are Holm-corrected over the pairs.")
    if widest and resamples * (1 - level) / (2 * widest) < 1:
        text += (f" With {resamples} resamples and m = {widest}, a tail of the simultaneous interval holds less than one "
                 "resample, so its bounds are the extreme resamples (wider than they need be); raise --resamples.")
    return [("p", text)]


def _md_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def render_markdown(rep: Report, figs: dict[str, str]) -> str:
    lines: list[str] = []
    for kind, x in blocks(rep, figs):
        if kind == "h1":
            lines += [f"# {_md_escape(x)}", ""]
        elif kind == "h2":
            lines += [f"## {_md_escape(x)}", ""]
        elif kind == "p":
            lines += [_md_escape(x), ""]
        elif kind == "ul":
            lines += [f"- {_md_escape(v)}" for v in x] + [""]
        elif kind == "img":
            lines += [f"![{_md_escape(x[1])}]({x[0]})", ""]
        elif kind == "table":
            df: pd.DataFrame = x
            lines.append("| " + " | ".join(_md_escape(str(c)) for c in df.columns) + " |")
            lines.append("|" + "---|" * len(df.columns))
            for row in df.itertuples(index=False):
                lines.append("| " + " | ".join(_md_escape(_cell(v)) for v in row) + " |")
            lines.append("")
    return "\n".join(lines)


CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;font-size:0.85em;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}"
       "th{background:#f3f3f3}img{max-width:100%}")


def _data_uri(folder: Path, relative: str) -> str:
    """A written figure as a data: URI (base64), so report.html holds its images itself."""
    import base64
    import mimetypes

    kind = mimetypes.guess_type(relative)[0] or "application/octet-stream"
    return f"data:{kind};base64,{base64.b64encode((folder / relative).read_bytes()).decode('ascii')}"


def render_html(rep: Report, figs: dict[str, str], embed: Path | None = None) -> str:
    """report.html; with `embed` (the report folder) every figure is inside it, not linked."""
    e = html.escape
    body: list[str] = []
    title = ""
    for kind, x in blocks(rep, figs):
        if kind in ("h1", "h2"):
            title = title or x
            body.append(f"<{kind}>{e(x)}</{kind}>")
        elif kind == "p":
            body.append(f"<p>{e(x)}</p>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{e(v)}</li>" for v in x) + "</ul>")
        elif kind == "img":
            src = _data_uri(embed, x[0]) if embed is not None and (embed / x[0]).is_file() else x[0]
            body.append(f'<p><img src="{e(src)}" alt="{e(x[1])}"></p>')
        elif kind == "table":
            df = x
            head = "".join(f"<th>{e(str(c))}</th>" for c in df.columns)
            rows = "".join("<tr>" + "".join(f"<td>{e(_cell(v))}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False))
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
            f"<style>{CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")
