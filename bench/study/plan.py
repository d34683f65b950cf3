"""`bench study --dry-run`: the plan of a study and an estimate of its compute, from a short
measured calibration on the device that will run it. Nothing is written to the study's storage
or results.

Calibration runs the real training loop of each variant at its paper default: a few untimed
warm-up steps, then timed D steps with and without a G update (so the estimate follows the
disc_iters a trial may draw), and two evaluations with every metric of the study at its sample
counts. A trial is estimated as setup + steps x (seconds per D step) + evaluations x (seconds per
evaluation), and a variant as that times the trials its budget still admits (a partly done study
counts the trials already finished or running in its storage). Reference statistics computed by
the calibration are cached for the trials and reported apart, as a one-off. Where the dataset or
the Inception weights are not on this machine (a login node), generated data of the same shape
and random weights of the same network stand in, and the plan says so.
"""

from __future__ import annotations

import math
import os
import statistics
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import optuna
from optuna.trial import FrozenTrial

from bench import data as data_mod
from bench import records, storage
from bench.config import StudyConfig
from bench.errors import HarnessError
from bench.gan.variants import VARIANTS
from bench.metrics import METRICS, fidelity
from bench.search.space import Choice, Fixed
from bench.study import budget as budget_mod
from bench.study.budget import Budget
from bench.study.status import budget_of, optuna_study_name, stored_budget
from bench.trial.train import resolve_device, run_trial, trial_seeds


def evaluations_per_trial(cfg: StudyConfig) -> int:
    """Checkpoints evaluated: every checkpoint_every D steps, and at the end."""
    every, steps = cfg.train.checkpoint_every, cfg.train.steps
    return steps // every + (steps % every != 0)


WARMUP_STEPS = 4  # untimed: the first steps pay for allocation, kernel selection and cold caches


@dataclass(frozen=True)
class Calibration:
    variant: str
    device: str
    setup_s: float  # per trial: data, networks, optimizers, the warm-up steps' excess, the first evaluation's extra
    step_s: float  # one D step with its share of G steps, at the disc_iters mix of the study's space
    eval_s: float  # one evaluation of every metric of the study, at its sample counts
    d_step_s: float = math.nan  # a step without a G update (mean over the timed steps)
    g_step_s: float = math.nan  # what a G update adds to a step
    disc_iters: tuple[int, ...] = ()  # the values a trial may draw, equally likely (random search)
    once_s: float = 0.0  # reference statistics computed by this calibration: once per machine, not per trial
    warmup: int = 0  # steps left untimed
    timed: int = 0  # steps timed
    notes: tuple[str, ...] = ()  # what stood in for what this machine lacks (data, weights)

    def trial_s(self, cfg: StudyConfig) -> float:
        """A trial at the disc_iters mix of the study's space."""
        return self.setup_s + cfg.train.steps * self.step_s + evaluations_per_trial(cfg) * self.eval_s

    def trial_s_at(self, cfg: StudyConfig, disc_iters: int) -> float:
        """A trial at one disc_iters (the paper default's, for trial 0)."""
        return self.setup_s + cfg.train.steps * (self.d_step_s + self.g_step_s / disc_iters) + evaluations_per_trial(cfg) * self.eval_s


def disc_iters_mix(cfg: StudyConfig, variant: str) -> tuple[int, ...]:
    """The disc_iters a trial of `variant` may run with: the study's fixed value, the space's fixed
    value, or every choice of the space (a random search draws them equally often)."""
    p = VARIANTS[variant].space(cfg.study.space, cfg.study.fixed).get("disc_iters")
    if isinstance(p, Choice):
        return tuple(int(k) for k in p.values)
    if isinstance(p, Fixed):
        return (int(p.value),)
    return (int(VARIANTS[variant].defaults_in(cfg.study.space, cfg.study.fixed)["disc_iters"]),)


def calibrate(cfg: StudyConfig, variant: str, device_spec: str | None, steps: int = 20, warmup: int = WARMUP_STEPS,
              clock: Callable[[], float] = time.perf_counter) -> Calibration:
    """Time `steps` D steps after `warmup` untimed ones, and two evaluations, of `variant` at its paper default.

    The real loop (run_trial) runs warmup + steps D steps (steps rounded up to even) with G updated
    every second step, so that steps with and without a G update alternate and each is timed
    (`clock` is read at t0, after every step, and after each evaluation, in that order; the steps are
    logged one by one, so they include a log line each, a few tens of microseconds); a step at
    disc_iters k then costs d + g / k (means over the timed steps), averaged over the study's
    disc_iters mix. Evaluations, with every metric of the study at its sample counts, run after the
    warm-up and half the timed steps, and at the end: the second is the per-checkpoint cost, the
    first one's extra (loading the feature extractor) is paid once per trial, unless it was computing
    reference statistics, which are cached for every later trial.
    Where the dataset or the Inception weights are not on this machine, generated data of the same
    shape and random weights of the same network stand in (timing only), and `notes` says so."""
    if steps < 2:
        raise HarnessError(f"calibration needs at least 2 timed D steps, got {steps}")
    if warmup < 1:
        raise HarnessError(f"calibration needs at least 1 warm-up step (it carries the setup), got {warmup}")
    timed = steps + steps % 2  # even: as many steps with a G update as without
    half = warmup + timed // 2  # the first evaluation comes after this step, the second after the last
    device = resolve_device(device_spec or cfg.train.device)
    v = VARIANTS[variant]
    mix = disc_iters_mix(cfg, variant)
    hp = {**v.defaults_in(cfg.study.space, cfg.study.fixed), "disc_iters": 2}  # timing only: G on every second step
    stamps: list[float] = []  # after every step and after each evaluation, in call order
    evals: list[int] = []  # indices in stamps of the evaluations

    def on_progress(step: int) -> None:
        stamps.append(clock())

    def on_eval(step: int, value: float) -> None:
        evals.append(len(stamps))
        stamps.append(clock())

    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as tmp, _stand_ins(cfg, Path(tmp)) as (c, notes):
        c = c.replace("train", steps=warmup + timed, checkpoint_every=half, log_every=1)
        stats_before = _stats_files()
        t0 = clock()
        result = run_trial(c, v, hp, trial_seeds(cfg.study.seed, 0), Path(tmp) / "trial", device, on_eval, on_progress)
        computed_stats = _stats_files() != stats_before
    if result.outcome != "complete" or len(evals) != 2:
        raise HarnessError(f"calibration of {variant} did not finish: {result.reason or result.outcome}")
    # stamps: p1..p_half, e1, p_half+1..p_last, e2 (p_s after step s, e after an evaluation)
    last = warmup + timed
    p = [t0, *stamps[: half], *stamps[half + 1: -1]]  # p[s]: after step s (p[0] = t0)
    e1, e2 = stamps[half] - p[half], stamps[-1] - p[last]
    after_e1 = stamps[half]  # step half+1 starts after the first evaluation
    durations = {s: (p[s] - (after_e1 if s == half + 1 else p[s - 1])) for s in range(warmup + 1, last + 1)}
    d = statistics.fmean(t for s, t in durations.items() if s % 2)  # hp disc_iters 2: odd steps are D only
    dg = statistics.fmean(t for s, t in durations.items() if not s % 2)
    g = max(0.0, dg - d)
    step_s = d + g * statistics.fmean(1 / k for k in mix)
    warm_excess = max(0.0, p[warmup] - t0 - warmup * (d + g / 2))
    first_extra = max(0.0, e1 - e2)
    once = first_extra if computed_stats else 0.0
    return Calibration(variant, str(device), warm_excess + (0.0 if computed_stats else first_extra), step_s, e2,
                       d, g, mix, once, warmup, len(durations), tuple(notes))


def _stats_files() -> set[str]:
    d = records.cache_root() / "stats"
    return {f.name for f in d.glob("*.npz")} if d.is_dir() else set()


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@contextmanager
def _stand_ins(cfg: StudyConfig, tmp: Path) -> Iterator[tuple[StudyConfig, list[str]]]:
    """`cfg` (with random Inception weights where the real ones are missing) and notes, with a
    stand-in for the dataset loaded where its files are missing; the stand-in's reference
    statistics go to a throw-away cache."""
    notes: list[str] = []
    root = data_mod.resolve_root(cfg.data.root)
    with ExitStack() as stack:
        try:
            data_mod.load(cfg.data.dataset, root)
        except HarnessError:
            test_size = max(METRICS[m].num_samples for m in cfg.eval.metrics)
            fake = data_mod.stand_in(cfg.data.dataset, test_size)
            stack.enter_context(data_mod.substituted(cfg.data.dataset, root, fake))
            stack.enter_context(_env("BENCH_CACHE", str(tmp / "cache")))
            notes.append(f"{cfg.data.dataset} is not on this machine (not in {root}): calibrated on generated data of its shape "
                         f"{data_mod.DATASETS[cfg.data.dataset].shape} ({data_mod.STAND_IN_TRAIN:,} train / {test_size:,} test samples "
                         f"of uniform noise); `bench fetch {cfg.data.dataset}` before the trials run")
        if any(METRICS[m].extractor == "inception" for m in cfg.eval.metrics):
            try:
                fidelity.resolve_inception_weights(cfg.eval.inception_weights)
            except HarnessError:
                weights = fidelity.write_random_inception_weights(tmp / fidelity.INCEPTION_FILE)
                cfg = cfg.replace("eval", inception_weights=str(weights))
                notes.append("the Inception weights are not on this machine: evaluations timed with random weights of the same network "
                             "(the trials need the real file; see `bench fid --help`)")
        yield cfg, notes


def stored_progress(cfg: StudyConfig, url: str, variants: list[str]) -> dict[str, tuple[Budget, list[FrozenTrial]]]:
    """Each variant's stored budget and trials, for the variants whose study exists in the storage at
    `url` (which must exist: opening a SQLite URL creates its file)."""
    st = storage.open_storage(url, heartbeat=False)
    existing = set(storage.study_names(st))
    out = {}
    for v in variants:
        name = optuna_study_name(cfg, v)
        if name in existing:
            study = optuna.load_study(study_name=name, storage=st)
            out[v] = (stored_budget(study, cfg), study.get_trials(deepcopy=False))
    return out


def plan_lines(cfg: StudyConfig, variants: list[str], url: str, workers: int, device: str | None,
               calibrate_steps: int, status: list[str], budget_notes: list[str] = (),
               stored: dict[str, tuple[Budget, list[FrozenTrial]]] | None = None) -> list[str]:
    """The plan; `budget_notes`: what the storage says against "identical for every variant" (a
    budget change this run would make or be refused, unequal stored budgets), each on its own line;
    `stored`: each started variant's stored budget and trials (stored_progress), so the estimate
    covers only what is left."""
    b = budget_of(cfg)
    t = cfg.train
    stored = stored or {}
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
    total, once, notes = 0.0, 0.0, []
    for v in variants:
        try:
            cal = calibrate(cfg, v, device, calibrate_steps)
        except (HarnessError, RuntimeError) as e:
            lines.append(f"estimate  {v}: calibration failed ({str(e).splitlines()[0]}); no estimate")
            total = math.nan
            continue
        notes += [n for n in cal.notes if n not in notes]
        once += cal.once_s
        vb, trials = stored.get(v, (b, []))
        left = budget_mod.left(trials, vb, t.steps)
        # Trial 0 runs the paper default, whose disc_iters may lie outside the space (wgan: 5 in the narrow space's 1)
        k0 = int(VARIANTS[v].defaults_in(cfg.study.space, cfg.study.fixed)["disc_iters"])
        first = left.trials > 0 and not any(x.user_attrs.get("paper_default") and budget_mod.counts(x) for x in trials)
        per_variant = min(left.trials * cal.trial_s(cfg) + (cal.trial_s_at(cfg, k0) - cal.trial_s(cfg) if first else 0.0), left.seconds)
        total += per_variant
        mix = "/".join(map(str, cal.disc_iters))
        done = f" ({left.finished} of {vb.trials} finished, {left.running} running)" if v in stored else ""
        default = (f" (the paper default, disc_iters {k0}: {_hours(cal.trial_s_at(cfg, k0))})"
                   if first and cal.disc_iters != (k0,) else "")
        lines.append(f"estimate  {v}: {cal.step_s * 1e3:.1f} ms per D step (disc_iters {mix}), {cal.eval_s:.1f} s per evaluation, "
                     f"{cal.setup_s:.1f} s setup on {cal.device} -> {_hours(cal.trial_s(cfg))} per trial{default}, "
                     f"{_hours(per_variant)} for the {left.trials} trials left{done}")
    lines += [f"calibrate {n}" for n in notes]
    if once:
        lines.append(f"calibrate reference statistics computed once ({_hours(once)}), cached for the trials")
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
