"""Report benchmark: `bench report` on a synthetic 10,000-trial study (4 variants x 2,500 trials,
4 checkpoints each, some diverged, pruned and failed), stored in a real Optuna SQLite file.

Figures (seconds, medians of repeats):
- `report_s`: `report.write_report` in process, from the SQLite file to every table, figure,
  report.md and report.html (the notebook left out); goal <= 10 s on this CPU. `report_cpu_s` is
  the same run's CPU time, less sensitive to other users of the machine; `detail` splits the
  wall time by stage.
- `cli_s`: the whole `python -m bench report FOLDER` in a fresh process (one run), interpreter start and
  the executed notebook included (the notebook runs in its own kernel while the tables and
  figures are drawn).
- `ratio`: Optuna's own `get_trials` load of the same studies over the bulk export
  (`storage.export_studies`) that reports use, measured side by side (one round each).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.benchmarks import benchmark
from bench.benchmarks.timing import median, side_by_side


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@benchmark("report_10k")
def report_10k(quick: bool) -> dict[str, Any]:
    from bench import records, storage
    from bench.report import synthetic, write_report

    per_variant = 500 if quick else 2500
    repeats = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "results" / "synthetic"
        folder.mkdir(parents=True)
        url = records.default_storage_url("synthetic", folder.parent)
        exported = synthetic.synthetic_export(per_variant)
        synthetic.write_sqlite(url, exported)
        synthetic.check_sqlite(url, exported)
        trials = sum(len(s["trials"]) for s in exported)

        walls, cpus, stages = [], [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), _cpu()
            rep, _ = write_report(folder, notebook=False)
            walls.append(time.perf_counter() - t0)
            cpus.append(_cpu() - c0)
            stages.append(rep.timings)
        # one run: a figure beside the goal (63 s at load 12, against 37 s for each in-process report above)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "bench", "report", str(folder), "--brief"], capture_output=True, text=True)
        cli = [time.perf_counter() - t0]
        if r.returncode != 0:
            raise RuntimeError(f"bench report failed: {r.stderr.strip()}")
        out: dict[str, Any] = {
            "trials": trials, "rows": len(rep.frame), "report_s": round(median(walls), 2), "report_cpu_s": round(median(cpus), 2),
            "goal_s": 10.0, "cli_s": round(median(cli), 2),
            "detail": {"stages_s": {k: round(median([s.get(k, 0.0) for s in stages]), 2) for k in stages[0]}},
        }
        if not quick:
            def fast() -> float:
                t0 = time.perf_counter()
                storage.export_studies(url, fast=True)
                return time.perf_counter() - t0

            def api() -> float:
                t0 = time.perf_counter()
                storage.export_studies(url, fast=False)
                return time.perf_counter() - t0

            # one round: the ratio is several-fold (8.2x at load 12), and two rounds of Optuna's side took a quarter of the benchmark
            times = side_by_side({"export": fast, "optuna_api": api}, repeats=1, warmup=0)
            out.update(export_s=round(median(times["export"]), 2), optuna_api_s=round(median(times["optuna_api"]), 2),
                       ratio=round(median(times["optuna_api"]) / median(times["export"]), 2))
    out["command"] = "python -m bench.benchmarks report_10k" + (" --quick" if quick else "")
    return out
