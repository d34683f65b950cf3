"""`bench study --dry-run`: the plan of a study and an estimate of its compute, from a short
measured calibration on the device that will run it. Nothing is written to the study's storage
or results.

Calibration trains each variant at its paper default for a few D steps on the real data and
architecture and evaluates once (every metric of the study). A trial is then estimated as
setup + steps x (seconds per D step) + evaluations x (seconds per evaluation). The evaluation
time includes computing the metric's reference statistics when they are not cached yet
($BENCH_CACHE), so a first dry run may over-estimate it; a second one is accurate.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import storage
from bench.config import StudyConfig
from bench.errors import HarnessError
from bench.gan.variants import VARIANTS
from bench.study.status import budget_of
from bench.trial.train import resolve_device, run_trial, trial_seeds


def evaluations_per_trial(cfg: StudyConfig) -> int:
    """Checkpoints evaluated: every checkpoint_every D steps, and at the end."""
    every, steps = cfg.train.checkpoint_every, cfg.train.steps
    return steps // every + (steps % every != 0)


@dataclass(frozen=True)
class Calibration:
    variant: str
    device: str
    setup_s: float  # data, networks, optimizers, first steps' warm-up
    step_s: float  # one D step (with its share of G steps at the default disc_iters)
    eval_s: float  # one evaluation of every metric

    def trial_s(self, cfg: StudyConfig) -> float:
        return self.setup_s + cfg.train.steps * self.step_s + evaluations_per_trial(cfg) * self.eval_s


def calibrate(cfg: StudyConfig, variant: str, device_spec: str | None, steps: int = 20) -> Calibration:
    """Time `steps` D steps and one evaluation of `variant` at its paper default."""
    if steps < 2:
        raise HarnessError(f"calibration needs at least 2 D steps, got {steps}")
    half = steps // 2
    c = cfg.replace("train", steps=steps, checkpoint_every=steps, log_every=half, keep_checkpoints=False)
    device = resolve_device(device_spec or cfg.train.device)
    v = VARIANTS[variant]
    marks: dict[str, float] = {}

    def on_progress(step: int) -> None:
        marks[f"p{step}"] = time.perf_counter()

    def on_eval(step: int, value: float) -> None:
        marks["e"] = time.perf_counter()

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as tmp:
        result = run_trial(c, v, v.defaults_in(cfg.study.space, cfg.study.fixed), trial_seeds(cfg.study.seed, 0), Path(tmp), device, on_eval, on_progress)
    if result.outcome != "complete" or "e" not in marks:
        raise HarnessError(f"calibration of {variant} did not finish: {result.reason or result.outcome}")
    step_s = (marks[f"p{steps}"] - marks[f"p{half}"]) / (steps - half)
    return Calibration(variant, str(device), max(0.0, marks[f"p{half}"] - t0 - half * step_s), step_s, marks["e"] - marks[f"p{steps}"])


def plan_lines(cfg: StudyConfig, variants: list[str], url: str, workers: int, device: str | None,
               calibrate_steps: int, status: list[str], budget_notes: list[str] = ()) -> list[str]:
    """The plan; `budget_notes`: what the storage says against "identical for every variant" (a
    budget change this run would make or be refused, unequal stored budgets), each on its own line."""
    b = budget_of(cfg)
    t = cfg.train
    lines = [
        f"study     {cfg.name} ({cfg.source})" + (f": {cfg.study.description}" if cfg.study.description else ""),
        f"storage   {storage.mask(url)}",
        f"variants  {', '.join(variants)}",
        f"budget    {b.describe()} per variant" + ("" if any("refused" in n or "unequal budgets" in n for n in budget_notes)
                                                     else ", identical for every variant"),
        *[f"budget    {note}" for note in budget_notes],
        f"search    sampler {cfg.study.sampler}, pruner {cfg.study.pruner}, {cfg.study.space} space, seed {cfg.study.seed}"
        + (f"; held in every trial: {', '.join(f'{k} = {v:g}' if isinstance(v, float) else f'{k} = {v}' for k, v in cfg.study.fixed.items())}"
           if cfg.study.fixed else ""),
        f"data      {cfg.data.dataset}; {cfg.model.architecture} x{cfg.model.width:g}, z {cfg.model.z_dim}, batch {t.batch_size}",
        f"trial     {t.steps:,} D steps, {evaluations_per_trial(cfg)} evaluations (every {t.checkpoint_every:,} steps and at the end) of {', '.join(cfg.eval.metrics)}",
        f"workers   {workers} on {device or t.device}",
        *[f"now       {s}" for s in status],
    ]
    if calibrate_steps <= 0:
        return lines + ["estimate  skipped (--calibrate-steps 0)"]
    total = 0.0
    for v in variants:
        try:
            cal = calibrate(cfg, v, device, calibrate_steps)
        except (HarnessError, RuntimeError) as e:
            lines.append(f"estimate  {v}: calibration failed ({str(e).splitlines()[0]}); no estimate")
            total = math.nan
            continue
        trials = b.trials if not b.steps else min(b.trials, b.steps // t.steps)
        per_variant = trials * cal.trial_s(cfg)
        if b.seconds:
            per_variant = min(per_variant, b.seconds)
        total += per_variant
        lines.append(f"estimate  {v}: {cal.step_s * 1e3:.1f} ms per D step, {cal.eval_s:.1f} s per evaluation, {cal.setup_s:.1f} s setup "
                     f"on {cal.device} -> {_hours(cal.trial_s(cfg))} per trial, {_hours(per_variant)} for {trials} trials")
    if math.isfinite(total):
        lines.append(f"total     {_hours(total)} of device time; about {_hours(total / workers)} wall with {workers} worker(s) "
                     "each on its own device (workers sharing one device share its speed)")
    return lines


def _hours(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"
