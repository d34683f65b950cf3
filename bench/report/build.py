"""From the tidy frame to every table and figure of a report, and onto disk.

`build` is a pure function of the frame (seeded bootstraps); `write` puts the results under
results/<study>/report/: summary.csv, trials.parquet (the tidy frame), trials.csv (one row per
trial at its best checkpoint), budget.csv,
comparisons.csv, importance.csv, report.md, report.html, figures/*.png and report.ipynb (built from
bench/templates/report.ipynb and executed, so it opens with its outputs).
"""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from bench import records
from bench.report import agreement, devicetime, dynamics, figures, sensitivity, stats, variance
from bench.report.document import render_html, render_markdown
from bench.report.model import Report
from bench.report.tables import pruned_table, secondary_table, seeds_table, summary_table
from bench.report.tidy import check_scored, load_phases, per_trial, scores, study_name


def build(frame: pd.DataFrame, resamples: int = 2000, evaluator: str = "ped_anova", seed: int = 0,
          seeds: pd.DataFrame | None = None, probes: dict[tuple[str, str], dict[str, Any]] | None = None,
          include_pruned: bool | None = None) -> Report:
    """All tables of a report from the search's tidy frame (and the seed reruns' one and the records
    of `bench probe`, if given). Pruned trials are counted and shown apart, not scored, unless
    `include_pruned` (default: the frame's attrs, so a report's trials.parquet rebuilds the same
    report). Raises HarnessError when no trial has a score yet."""
    if include_pruned is not None:
        frame = frame.copy(deep=False)
        frame.attrs = {**frame.attrs, "include_pruned": bool(include_pruned)}  # read by per_trial and agreement
    t: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        t[name] = round(now - clock, 3)
        clock = now

    best = per_trial(frame)
    check_scored(best)
    summary = summary_table(best)
    lap("tables_s")
    sc = scores(best)
    curves, reps = stats.budget_curves(sc, resamples=resamples, seed=seed)
    lap("budget_s")
    mw, diffs = stats.compare(sc, reps, metric=frame.attrs["objective"])
    lap("compare_s")
    imp = sensitivity.importance(best, evaluator, seed)
    lap("importance_s")
    agree = agreement.agreement(frame, resamples=resamples, seed=seed)
    ranks = agreement.rankings(frame, [m for m in frame.attrs.get("metrics", []) if m in frame]) if not agree.empty else None
    lap("agreement_s")
    budget_s = max((float(c["study"].get("budget_seconds") or 0) for c in frame.attrs.get("configs", {}).values()), default=0.0)
    times = devicetime.time_curves(best, orders=resamples, seed=seed, budget_seconds=budget_s)
    lap("device_time_s")
    has_seeds = seeds is not None and not seeds.empty
    probes = probes or {}
    var = variance.variance_table(frame, probes, per_trial(seeds) if has_seeds else None)
    memo = variance.memorization_table(frame, probes)
    pruned = pruned_table(frame, best)
    secondary = secondary_table(best)
    return Report(frame, best, summary, curves, mw, diffs, imp, sensitivity.learning_rate_view(best),
                  seeds=seeds if has_seeds else None, seeds_summary=seeds_table(per_trial(seeds)) if has_seeds else None,
                  agreement=agree if not agree.empty else None, rankings=ranks, time_curves=times if not times.empty else None,
                  variance=var if not var.empty else None, memorization=memo if not memo.empty else None,
                  secondary=secondary if not secondary.empty else None, pruned=pruned if not pruned.empty else None, conclusions=stats.conclusions(sc, diffs),
                  settings={"resamples": resamples, "evaluator": evaluator, "seed": seed, "level": stats.LEVEL, "min_n": stats.MIN_N,
                            "include_pruned": bool(best.attrs.get("include_pruned")),
                            "budget_seconds": budget_s}, timings=t)


def draw(rep: Report) -> dict[str, Any]:
    """Every figure of the report as matplotlib figures, by file stem (a Path: a PNG written by
    `bench probe`, copied as it is)."""
    figs = {"distribution": figures.distribution(rep.best), "budget": figures.budget(rep.curves, rep.metric),
            "importance": figures.importance_bars(rep.importance)}
    if rep.secondary is not None:
        figs["secondary"] = figures.secondary(rep.best, rep.secondary)
    if not rep.learning_rate.empty:
        figs["learning_rate"] = figures.learning_rate(rep.learning_rate, rep.metric)
    figs.update(figures.samples(rep.best))
    figs.update(dynamics.figure(rep.best))  # 2-D studies only: the densities over training (issue 15)
    if rep.memorization is not None:
        for variant, image in zip(rep.memorization["variant"], rep.memorization["image"]):
            if image:
                figs[f"nearest-{variant}"] = Path(image)  # written by `bench probe`; copied as it is
    if rep.time_curves is not None:
        figs["device_time"] = devicetime.figure(rep.time_curves, rep.metric, rep.settings.get("budget_seconds", 0.0))
    return figs


def write(rep: Report, out_dir: Path, notebook: bool = True, log: Callable[[str], None] = lambda s: None,
          dpi: int = figures.DPI) -> dict[str, Path]:
    """Write every file of the report into out_dir; returns them by name. Figures: PNG at `dpi` and
    SVG; report.html carries them inside (base64), so it is one file to mail."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    clock = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def put(name: str, data: bytes) -> Path:
        records.atomic_write_bytes(out_dir / name, data)
        paths[name] = out_dir / name
        return paths[name]

    frame = rep.frame
    put("trials.parquet", _parquet_bytes(frame))
    # The notebook reads trials.parquet and runs in its own kernel process: start it now, so that
    # it works on the other core while this process writes tables and figures.
    nb_result: dict[str, Any] = {}
    nb_thread = None
    if notebook:
        # What both threads import is imported here first. The notebook thread's kernel-spec lookup
        # imports ipykernel and with it IPython; pyplot, imported by this thread for the figures, asks
        # a loaded IPython for its REPL hook, and once found it half-initialized ("partially
        # initialized module 'IPython'", the lucic_small case's first report).
        import IPython  # noqa: F401  (installed with ipykernel, which executes the notebook)
        import matplotlib.pyplot  # noqa: F401

        nb_thread = threading.Thread(target=_notebook_job, args=(out_dir, frame.attrs.get("source", ""), nb_result), daemon=True)
        nb_thread.start()
    put("summary.csv", rep.summary.to_csv(index=False).encode())
    # One row per trial at its best checkpoint (`score`), small enough to commit beside a report.
    put("trials.csv", rep.best.to_csv(index=False).encode())
    put("budget.csv", rep.curves.to_csv(index=False).encode())
    comparisons = rep.differences.merge(rep.mann_whitney, on=["dataset", "a", "b"], how="left")
    put("comparisons.csv", comparisons.to_csv(index=False).encode())
    put("importance.csv", rep.importance.to_csv(index=False).encode())
    for name, table in (("pruned.csv", rep.pruned), ("agreement.csv", rep.agreement), ("device_time.csv", rep.time_curves), ("variance.csv", rep.variance),
                        ("memorization.csv", rep.memorization)):
        if table is not None:
            put(name, table.to_csv(index=False).encode())
    if rep.seeds is not None:
        put("seeds.parquet", _parquet_bytes(rep.seeds))
        put("seeds_summary.csv", rep.seeds_summary.to_csv(index=False).encode())
    rep.timings["files_s"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    figs = {}
    for name, fig in draw(rep).items():
        figs[name] = f"figures/{name}.png"
        if isinstance(fig, Path):
            put(figs[name], fig.read_bytes())
        else:
            png, svg = figures.save(fig, out_dir / figs[name], dpi)
            paths[figs[name]] = png
            paths[f"figures/{svg.name}"] = svg
    rep.timings["figures_s"] = round(time.perf_counter() - clock, 3)
    clock = time.perf_counter()
    put("report.md", render_markdown(rep, figs).encode())
    put("report.html", render_html(rep, figs, embed=out_dir).encode())
    rep.timings["documents_s"] = round(time.perf_counter() - clock, 3)
    if nb_thread is not None:
        clock = time.perf_counter()
        nb_thread.join()
        rep.timings["notebook_wait_s"] = round(time.perf_counter() - clock, 3)
        rep.timings["notebook_s"] = nb_result.get("seconds", math.nan)
        if "error" in nb_result:
            raise nb_result["error"]
        paths["report.ipynb"] = nb_result["path"]
    return paths


def _notebook_job(out_dir: Path, source: str, result: dict[str, Any]) -> None:
    from bench.report.notebook import execute_notebook

    clock = time.perf_counter()
    try:
        result["path"] = execute_notebook(out_dir, source=source)
    except BaseException as e:  # handed to the main thread, which raises it
        result["error"] = e
    result["seconds"] = round(time.perf_counter() - clock, 3)


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    import io

    buf = io.BytesIO()
    # Hyperparameter columns can mix types across variants (a bool here, absent there): keep them as
    # objects pyarrow can store, one type per column.
    out = frame.copy()
    for c in out.columns:
        if out[c].dtype == object:
            kinds = {type(v) for v in out[c] if v is not None and not (isinstance(v, float) and np.isnan(v))}
            if len(kinds) > 1:
                out[c] = out[c].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
    out.to_parquet(buf, index=False)
    return buf.getvalue()


def write_report(source: Any, out_dir: Path | None = None, *, study: str | None = None, storage_url: str | None = None,
                 notebook: bool = True, resamples: int = 2000, evaluator: str = "ped_anova", seed: int = 0,
                 include_pruned: bool = False, dpi: int = figures.DPI) -> tuple[Report, dict[str, Path]]:
    """Load a study, build its report and write it (default folder: results/<study>/report/)."""
    clock = time.perf_counter()
    frames = load_phases(source, study=study, storage_url=storage_url)
    frame = frames["search"]
    load_s = round(time.perf_counter() - clock, 3)
    frame.attrs["include_pruned"] = include_pruned  # travels with trials.parquet to the notebook
    rep = build(frame, resamples=resamples, evaluator=evaluator, seed=seed, seeds=frames.get("seeds"),
                probes=variance.load_probes(frame))
    rep.timings = {"load_s": load_s, **rep.timings}
    if out_dir is None:
        out_dir = _default_dir(source, frame)
    return rep, write(rep, out_dir, notebook, dpi=dpi)


def _default_dir(source: Any, frame: pd.DataFrame) -> Path:
    name = study_name(frame)
    if isinstance(source, (str, Path)) and Path(source).is_dir() and Path(source).resolve().name == name:
        return Path(source).resolve() / "report"
    return records.report_dir(name)
