"""`bench.report`: a study's results as pandas tables, figures and an executed notebook.

The analysis follows Lucic et al. 2018 ("Are GANs Created Equal?"): distributions of each run's
best FID under a fixed budget, the expected best FID as a function of the budget, and how sure a
difference between variants is. Reports are pure functions from the stored records to DataFrames,
then to tables and figures.

    from bench import report
    frame = report.load("quick")          # study name, results folder, storage URL or trials.parquet
    best = report.per_trial(frame)        # one row per trial at its best checkpoint, with `score`
    rep = report.build(frame)             # summary, budget curves, comparisons, importance
    rep.summary; rep.curves; rep.mann_whitney; rep.differences; rep.conclusions; rep.secondary; rep.pruned
    report.figures.budget(rep.curves, rep.metric)
    report.write_report("quick")          # everything into results/quick/report/

Modules: tidy (the tidy frame, `load`), stats (expected best-of-k, bootstrap, Mann-Whitney, Holm,
simultaneous intervals, MIN_N, `conclusions`), tables (summary with every secondary metric, the
paper's Table 2, pruned trials apart), sensitivity (importance, learning rate), figures, document
(report.md / report.html), notebook (report.ipynb), model (`Report`), build (orchestration); issue 17's
agreement (rank agreement across metrics), devicetime (best score against device-seconds), variance
(seed against sampling spread, memorization, from `bench probe`) and sections (their report blocks).
"""

from __future__ import annotations

from bench.report import figures, sensitivity, stats, tables
from bench.report.build import build, draw, write, write_report
from bench.report.model import Report
from bench.report.stats import bootstrap_expected_min, budget_curves, compare, expected_min, holm
from bench.report.tables import TABLE2, seeds_table, summarize, summary_table
from bench.report.tidy import SCORED, STATES, check_scored, load, load_phases, per_trial, scores, study_name

__all__ = [
    "Report", "build", "draw", "study_name", "write", "write_report", "load", "load_phases", "per_trial", "seeds_table", "scores", "check_scored",
    "STATES", "SCORED", "expected_min", "bootstrap_expected_min", "budget_curves", "compare", "holm", "TABLE2",
    "summarize", "summary_table", "figures", "sensitivity", "stats", "tables",
]
