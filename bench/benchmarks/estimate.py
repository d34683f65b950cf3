"""Dry-run estimate against measured trial time (issue 18, point 2; goal: within +-25 % on an idle
machine).

For each of two variants of a small study (the quick study's data, architecture, batch and metric,
at fewer D steps), `bench study FILE --variant V --dry-run` runs in a fresh process and its
"per trial" estimate is read from the plan it prints; then `bench study FILE --variant V` runs the
study's trials in another fresh process, and each trial's measured seconds (the `seconds` the
runner records: the trial from loading its data to its last evaluation) are read back from the
storage. The figure per variant is `ratio` = the dry run's estimate for the variant's trials
(trial 0 at the paper default, the rest at the space's disc_iters) / the sum of their measured
seconds, the two taken one after the other in the same run, so they meet the same load.

On a shared machine the load can change twofold between the calibration and the trials, so
`cpu_ratio` checks the estimate's model apart from the load: in this process, on one thread, the
calibration is timed with the process's CPU clock (plan.calibrate's `clock`) and compared with
the CPU time of one trial of the same study (train.run_trial, the loop the runner calls).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.benchmarks import benchmark

VARIANTS = ("ns_gan", "wgan")

STUDY = """
[study]
name = "estimate-bench"
seed = 0
variants = {variants}
trials = {trials}
space = "narrow"
sampler = "random"

[data]
dataset = "digits5k"

[model]
architecture = "infogan"
width = 0.25
z_dim = 64

[train]
batch_size = 64
steps = {steps}
checkpoint_every = {every}
log_every = 50
device = "cpu"

[eval]
metrics = ["fid_lenet_digits5k_1k_test"]
seed = 42
batch_size = 500
generator_mode = "train"
"""

_UNITS = {"s": 1.0, "min": 60.0, "h": 3600.0}


def parse_estimate(plan: str, variant: str) -> tuple[float, int]:
    """(seconds, trials) of the variant's budget from the dry run's `estimate  <variant>: ... 4.4 min
    for the 2 trials left` line."""
    m = re.search(rf"^estimate  {re.escape(variant)}: .* ([0-9.]+) (s|min|h) for the ([0-9]+) trials left", plan, re.M)
    if not m:
        raise RuntimeError(f"no estimate for {variant} in the dry run's output:\n{plan}")
    return float(m.group(1)) * _UNITS[m.group(2)], int(m.group(3))


def _bench(*args: str, env: dict[str, str]) -> str:
    r = subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise RuntimeError(f"bench {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-2000:]}")
    return r.stdout


def cpu_check(study: Path) -> dict[str, Any]:
    """Per variant: the estimate from a calibration timed in CPU seconds over one trial's CPU seconds
    (one thread, this process), and both figures."""
    import time

    import torch

    from bench.config import load_study
    from bench.gan.variants import VARIANTS as RECIPES
    from bench.study import plan
    from bench.trial.train import run_trial, trial_seeds

    cfg = load_study(str(study))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, Any] = {}
    try:
        for v in VARIANTS:
            cal = plan.calibrate(cfg, v, "cpu", clock=time.process_time)
            hp = RECIPES[v].defaults_in(cfg.study.space, cfg.study.fixed)  # the paper default, trial 0
            with tempfile.TemporaryDirectory() as tmp:
                c0 = time.process_time()
                run_trial(cfg, RECIPES[v], hp, trial_seeds(cfg.study.seed, 1), Path(tmp), torch.device("cpu"))
                spent = time.process_time() - c0
            estimate = cal.trial_s_at(cfg, int(hp["disc_iters"]))
            out[f"{v}_cpu_estimate_s"] = round(estimate, 2)
            out[f"{v}_cpu_measured_s"] = round(spent, 2)
            out[f"{v}_cpu_ratio"] = round(estimate / spent, 3)
    finally:
        torch.set_num_threads(threads)
    return out


@benchmark("estimate_vs_measured")
def estimate_vs_measured(quick: bool) -> dict[str, Any]:
    import optuna

    from bench import records, storage

    steps, every, trials = (60, 30, 1) if quick else (300, 100, 2)
    out: dict[str, Any] = {"steps": steps, "trials_per_variant": trials, "goal": "0.75 <= ratio <= 1.25",
                           "load_before": round(os.getloadavg()[0], 2)}
    detail: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "estimate_bench.toml"
        study.write_text(STUDY.format(variants=repr(list(VARIANTS)).replace("'", '"'), trials=trials, steps=steps, every=every))
        env = {**os.environ, "BENCH_RESULTS": str(Path(tmp) / "results")}
        for v in VARIANTS:
            plan = _bench("study", str(study), "--variant", v, "--dry-run", env=env)
            estimate, n = parse_estimate(plan, v)
            _bench("study", str(study), "--variant", v, "--no-progress", env=env)
            url = records.default_storage_url("estimate-bench", Path(tmp) / "results")
            done = optuna.load_study(study_name=f"estimate-bench:{v}", storage=storage.open_storage(url, heartbeat=False))
            measured = [float(t.user_attrs["seconds"]) for t in done.get_trials(deepcopy=False) if t.user_attrs.get("outcome") == "complete"]
            if len(measured) != n:
                raise RuntimeError(f"{len(measured)} complete trials of {v}, the dry run planned {n}")
            out[f"{v}_estimate_s"] = round(estimate, 1)
            out[f"{v}_measured_s"] = round(sum(measured), 1)
            out[f"{v}_ratio"] = round(estimate / sum(measured), 3)
            detail[v] = {"plan": [line for line in plan.splitlines() if line.startswith(("estimate", "calibrate"))],
                         "measured_s": [round(s, 2) for s in measured]}
        out.update(cpu_check(study))
    out["load_after"] = round(os.getloadavg()[0], 2)  # 1-minute load average: the goal is for an idle machine
    out["detail"] = detail
    out["command"] = "python -m bench.benchmarks estimate_vs_measured" + (" --quick" if quick else "")
    return out
