"""The study runner: one Optuna study per (study file, variant), run by any number of workers.

Optuna's shared storage is the distributed engine (no queue of our own): `bench study` creates
the study and records its budget in the storage; every worker, on this machine or another, joins
it and runs trials until the budget is spent (budget.py decides, identically for every worker).
Running the same command again resumes and never redoes a finished trial. Trial 0 of every
search is the variant's paper default, enqueued when the study is created.

Outcomes: complete, diverged (non-finite losses or metrics; counted, never retried), pruned,
failed (an exception: recorded with its message, the worker goes on), interrupted (Ctrl-C or
SIGTERM: the trial is re-queued with the same parameters and seeds, and the worker stops),
aborted (the machine's fault - missing data or weights, a full disk: re-queued, and the worker
stops with one line saying what to fix; issue #10), lost
(the worker died: the heartbeat marks it stale and Optuna re-queues it) and over_budget (asked
for when another worker took the last slot: given back, recorded, not counted). A re-queued
trial keeps the hyperparameters and seeds of the trial it repeats (its `origin`).

Each trial leaves a folder (records.py) and its summary, sampler, pruner and spend (D steps,
seconds, device) in the storage's user attributes.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import optuna
import torch

from bench import records, storage
from bench.config import NEUTRAL_WHEN_ABSENT, OBSERVATION_ONLY, StudyConfig
from bench.errors import ConfigError, HarnessError
from bench.gan.variants import VARIANTS, Variant
from bench.study import status as status_mod
from bench.study.status import budget_of, optuna_study_name, stored_budget
from bench.search import space
from bench.search.samplers import PRUNERS, SAMPLERS
from bench.study import budget as budget_mod
from bench.study import dashboard
from bench.trial import manifest, resume
from bench.trial.train import resolve_device, run_trial, trial_seeds

_log = logging.getLogger(__name__)

# A full or read-only disk, or lost permissions: the machine's fault, so the trial is redone, not spent.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

# Keys that do not change what a trial computes: a study may be resumed with other values.
NOT_IN_DIGEST = ("trials", "description", "storage", "variants", "budget_steps", "budget_seconds")


class GiveBack(Exception):
    """A trial asked for when the budget had no room for it: recorded as over_budget, not counted."""


def main_variants(cfg: StudyConfig, variant: str) -> list[str]:
    """The variants `--variant` names (or the study file's for 'all'), refused before anything is
    written when the study's `[study] fixed` values do not apply to one of them."""
    names = status_mod.main_variants(cfg, variant)
    for v in names:
        problem = VARIANTS[v].fixed_problem(cfg.study.fixed)
        if problem:
            raise ConfigError(f"{cfg.source}: [study] fixed: {problem}")
    return names


def compat_digest(cfg: StudyConfig) -> str:
    """Hash of everything that changes what a trial computes (the budget and description excluded)."""
    import hashlib
    import json

    d = cfg.to_dict()
    for key in NOT_IN_DIGEST:
        d["study"].pop(key)
    for (section, key), neutral in NEUTRAL_WHEN_ABSENT.items():  # keys newer than some studies: they resume
        if d[section][key] == neutral:
            d[section].pop(key)
    for section, key in OBSERVATION_ONLY:  # watching (TensorBoard) never forks a study
        d[section].pop(key)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def open_study(cfg: StudyConfig, variant: Variant, url: str, create: bool = True) -> optuna.Study:
    """Create (create=True) or join the study of one variant. Creating records the budget."""
    st = storage.open_storage(url)
    name = optuna_study_name(cfg, variant.name)
    sampler = SAMPLERS[cfg.study.sampler].make(cfg.study.seed)
    pruner = PRUNERS[cfg.study.pruner].make(cfg.train.steps, cfg.train.checkpoint_every)
    if not create and name not in storage.study_names(st):
        raise ConfigError(f"storage {storage.mask(url)} holds no study {name!r}; create it with `bench study {cfg.source or cfg.name} --variant {variant.name} --create-only`")
    study = optuna.create_study(study_name=name, storage=st, sampler=sampler, pruner=pruner, direction="minimize", load_if_exists=True)
    digest = compat_digest(cfg)
    stored = study.user_attrs.get("compat_digest")
    if stored is None:
        study.set_user_attr("compat_digest", digest)
        study.set_user_attr("config", cfg.to_dict())  # the storage URL masked (StudyConfig.to_dict)
        study.set_user_attr("variant", variant.name)
        study.set_user_attr("storage_kind", storage.kind(url))
    elif stored != digest:
        raise ConfigError(
            f"{cfg.source}: storage {storage.mask(url)} already holds study {name!r} made from a different configuration "
            f"(digest {stored}, this file {digest}); use another [study] name or storage")
    else:  # the variant's search space is code, not in the digest: a changed range must not mix into old trials
        change = space.space_change(variant.space(cfg.study.space, cfg.study.fixed), study.get_trials(deepcopy=False))
        if change:
            raise ConfigError(
                f"{cfg.source}: storage {storage.mask(url)}: study {name!r} was searched in another space for "
                f"{variant.name}: {change}. One study's trials share one search space; use another [study] name or storage")
    if create:
        study.set_user_attr("budget", budget_of(cfg).to_dict())
        dashboard.describe_study(study, cfg, variant, budget_of(cfg).describe())  # metric name and note for optuna-dashboard
        if not study.get_trials(deepcopy=False):
            defaults = {k: variant.defaults_in(cfg.study.space, cfg.study.fixed)[k] for k in space.searched(variant.space(cfg.study.space, cfg.study.fixed))}
            study.enqueue_trial(defaults, user_attrs={"paper_default": True})
    return study


def frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


@dataclass(frozen=True)
class Phase:
    """What differs between a search trial and a seed rerun (phase 3, seeds.py); everything else - the
    trial folder and its records, the manifest, Ctrl-C and full-disk handling, re-queueing - is one
    objective (`make_objective`). A re-queued trial keeps its `origin`, and with it its seeds."""
    name: str  # "search" or "seeds": the manifest's phase
    folder: Callable[[int], Path]  # trial number -> its folder (records.py)
    seeds: Callable[[int], dict[str, int]]  # origin -> the trial's seeds
    hparams: Callable[[optuna.Trial, optuna.trial.FrozenTrial], dict[str, Any]]  # the trial's hyperparameters
    recorded: Callable[[optuna.trial.FrozenTrial, int], dict[str, Any]]  # (trial, origin) -> config.json's own fields
    summary: Callable[[optuna.trial.FrozenTrial, int], dict[str, Any]]  # (trial, origin) -> the storage's own user attributes
    budgeted: bool = True  # give back a trial the stored budget has no room for (GiveBack)
    pruned: bool = True  # report evaluations to the pruner


def search_phase(cfg: StudyConfig, variant: Variant, study: optuna.Study) -> Phase:
    """A search trial: hyperparameters from the sampler (trial 0: the paper default), seeds of its origin."""

    def hparams(trial: optuna.Trial, me: optuna.trial.FrozenTrial) -> dict[str, Any]:
        with warnings.catch_warnings():
            # A paper default may lie outside the narrow range (wgan's 5e-5); Optuna says so, rightly.
            warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
            hp = space.suggest(trial, variant.space(cfg.study.space, cfg.study.fixed))
        if me.user_attrs.get("paper_default"):
            hp = variant.defaults_in(cfg.study.space, cfg.study.fixed)  # sample 0 is the authors' setting, fixed values included
        return hp

    search = {"sampler": cfg.study.sampler, "pruner": cfg.study.pruner, "space": cfg.study.space}

    def recorded(me: optuna.trial.FrozenTrial, origin: int) -> dict[str, Any]:
        return {**search, "paper_default": bool(me.user_attrs.get("paper_default")), "budget": stored_budget(study, cfg).to_dict()}

    return Phase("search", lambda n: records.trial_dir(cfg.name, variant.name, n),
                 lambda origin: trial_seeds(cfg.study.seed, origin), hparams, recorded, lambda me, origin: search)


def make_objective(cfg: StudyConfig, variant: Variant, device: torch.device, url: str, study: optuna.Study,
                   progress: bool, last: dict[str, Any], phase: Phase | None = None) -> Callable[[optuna.Trial], float]:
    """Optuna's objective: one trial of `phase` (the search by default) per call, recorded however it ends.
    `last` tells run_worker the trial's number and, when the machine stopped it, why."""
    phase = phase or search_phase(cfg, variant, study)

    def objective(trial: optuna.Trial) -> float:
        return _TrialRun(cfg, variant, device, url, study, phase, trial, last).run(progress)

    return objective


class _TrialRun:
    """One call of the objective: admit the trial, prepare its folder, train, and record the outcome."""

    def __init__(self, cfg: StudyConfig, variant: Variant, device: torch.device, url: str, study: optuna.Study,
                 phase: Phase, trial: optuna.Trial, last: dict[str, Any]):
        self.cfg, self.variant, self.device, self.url, self.study, self.phase = cfg, variant, device, url, study, phase
        self.trial, self.last = trial, last
        self.metric = cfg.eval.metrics[0]
        self.me = frozen(study, trial.number)
        self.origin = storage.origin(self.me)
        self.tdir = phase.folder(trial.number)
        self.t0 = time.perf_counter()
        self.steps = 0
        self.bar: Any = None

    def run(self, progress: bool) -> float:
        trial = self.trial
        self.last["number"] = trial.number
        trial.set_user_attr("origin", self.origin)
        trial.set_user_attr("worker", worker_id())
        if self.phase.budgeted:
            self.give_back_without_room()
        # From here on the trial is ours: whatever ends it (Ctrl-C included) is recorded.
        result = None
        try:
            hp, seeds = self.prepare()
            if progress:
                self.bar = _progress_bar(f"{self.cfg.name}/{self.variant.name} trial {trial.number}", self.cfg.train.steps)
            plan = resume.Plan(resume.identity(compat_digest(self.cfg), self.variant.name, hp, seeds), self.resume_source())
            result = run_trial(self.cfg, self.variant, hp, seeds, self.tdir, self.device, self.on_eval, self.on_progress, plan)
            for key, value in {"outcome": result.outcome, "reason": result.reason, "steps": result.steps,
                               "seconds": round(result.seconds, 3), "best_step": result.best_step,
                               "evaluations": result.evaluations}.items():
                trial.set_user_attr(key, value)
            dashboard.attach_samples(trial, self.cfg.name, self.tdir)  # samples.png as the trial's Optuna artifact
            if result.resumed:
                trial.set_user_attr("resumed_from", result.resumed)
            return result.value
        except optuna.TrialPruned as e:
            self.end("pruned", str(e))
            raise
        except (KeyboardInterrupt, HarnessError) as e:  # not the hyperparameters' fault: redo the trial
            self.stop(e)
            raise
        except Exception as e:
            if isinstance(e, OSError) and e.errno in _MACHINE_ERRNOS:
                self.stop(HarnessError(f"{e.filename or self.tdir}: {e.strerror}; free space (or fix the folder's permissions) "
                                       "and run the same command again to redo this trial"))
                raise
            self.end("failed", f"{type(e).__name__}: {e}", {"kind": "failed", "error": traceback.format_exc()})
            raise
        finally:
            if self.bar is not None:
                self.bar.close()
            if trial.user_attrs.get("outcome") not in ("interrupted", "aborted"):  # never rerun: no state to keep
                for folder in (self.tdir, *self.chain()):
                    resume.discard(folder)
            # After every record above, the failure line included: the manifest's checksums cover them.
            manifest.finish(self.tdir, result, trial.user_attrs.get("outcome"))

    def give_back_without_room(self) -> None:
        """Raise GiveBack (recorded as over_budget, its queued parameters put back) when the budget has no room."""
        why = budget_mod.admits(self.study.get_trials(deepcopy=False), self.trial.number,
                                stored_budget(self.study, self.cfg), self.cfg.train.steps)
        if why:
            self.trial.set_user_attr("outcome", "over_budget")
            self.trial.set_user_attr("reason", why)
            if self.me.params or "fixed_params" in self.me.system_attrs:  # it came from the queue: put it back
                storage.requeue(self.study, self.me, retry=False)
            raise GiveBack(why)

    def prepare(self) -> tuple[dict[str, Any], dict[str, int]]:
        """Hyperparameters, seeds (those of the origin), the trial folder and its recorded config."""
        cfg, trial, tdir = self.cfg, self.trial, self.tdir
        hp = self.phase.hparams(trial, self.me)
        seeds = self.phase.seeds(self.origin)
        if tdir.exists():  # left by an earlier storage: keep it, never overwrite
            tdir.rename(tdir.with_name(f"{tdir.name}.stale-{int(time.time())}"))
        tdir.mkdir(parents=True)
        env = manifest.environment(self.device)
        records.write_json(records.config_path(tdir), {
            "study": cfg.name, "variant": self.variant.name, "recipe": self.variant.recipe(), "trial": trial.number,
            "origin": self.origin, "hparams": hp, "seeds": seeds, "eval_seed": cfg.eval.seed,
            **self.phase.recorded(self.me, self.origin), "config": cfg.to_dict(), "config_digest": cfg.digest(), "storage": storage.mask(self.url),
            "worker": worker_id(), "environment": env,
        })
        manifest.begin(tdir, cfg, self.variant.name, trial.number, hp, seeds, self.device, self.url, self.phase.name,
                       self.study.study_name)
        for key, value in {"hparams": hp, "seeds": seeds, **self.phase.summary(self.me, self.origin),
                           "device": str(self.device), "device_name": env["device_name"], "trial_dir": str(tdir)}.items():
            trial.set_user_attr(key, value)
        dashboard.record_fixed(trial, hp)  # fixed:<name> for every hyperparameter that is not a param
        return hp, seeds

    def chain(self) -> list[Path]:
        """Folders of the trials this one reruns (interrupted, aborted or lost), latest first."""
        return [self.phase.folder(n) for n in reversed(self.me.system_attrs.get("retry_history", []))]

    def resume_source(self) -> Path | None:
        """The latest folder of the chain with a saved training state: the trial continues from it."""
        return next((d for d in self.chain() if records.resume_path(d).is_file()), None)

    def on_progress(self, step: int) -> None:
        self.steps = step
        if self.bar is not None:
            self.bar.update(step - self.bar.n)

    def on_eval(self, step: int, value: float) -> None:
        self.steps = step
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.metric} {value:.4g}")
        if not self.phase.pruned:
            return
        self.trial.report(value, step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned by {self.cfg.study.pruner} at D step {step} with {self.metric} = {value:.4g}")

    def end(self, outcome: str, reason: str = "", log: dict[str, Any] | None = None) -> None:
        """Record how the trial ended, in the storage and (when given) as the metrics log's last line."""
        for key, value in {"outcome": outcome, "steps": self.steps, "seconds": round(time.perf_counter() - self.t0, 3)}.items():
            self.trial.set_user_attr(key, value)
        if reason:
            self.trial.set_user_attr("error" if outcome == "failed" else "reason", reason)
        if log and self.tdir.is_dir():
            try:
                records.append_jsonl(records.metrics_path(self.tdir), log)
            except OSError:
                pass  # the disk that stopped the trial may refuse this line too; the storage holds the reason

    def stop(self, e: BaseException) -> None:
        """Ctrl-C/SIGTERM ("interrupted") or the machine ("aborted"): record, re-queue the same
        parameters and seeds, and have run_worker stop after Optuna has recorded the trial."""
        interrupted = isinstance(e, KeyboardInterrupt)
        outcome = "interrupted" if interrupted else "aborted"
        reason = "interrupted (Ctrl-C / SIGINT or SIGTERM)" if interrupted else str(e)
        self.end(outcome, reason, {"kind": outcome, "step": self.steps, "reason": reason})
        now = frozen(self.study, self.trial.number)
        # Not when another worker already failed it as stale (and re-queued it); nor, in the search,
        # when nothing was drawn yet (a fresh trial replaces it). A seed rerun draws nothing: its
        # number is its seed index, so its copy is queued to keep it (the copy's origin).
        drawn = now.params or "fixed_params" in now.system_attrs or self.phase.name != "search"
        if now.state == optuna.trial.TrialState.RUNNING and drawn:
            storage.requeue(self.study, now, retry=True)
        if not interrupted:
            self.last["stopped"] = e


def _progress_bar(desc: str, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr, dynamic_ncols=True, disable=None)


def run_worker(cfg: StudyConfig, variant_name: str, url: str, device_spec: str | torch.device | None = None,
               log: Callable[[str], None] = _log.info, progress: bool = True, wait: bool = True) -> optuna.Study:
    """Join the study of one variant and run trials until its budget is spent. `device_spec`: a
    device the caller resolved (the CLI resolves it once), or a spec to resolve here.

    With `wait`, a worker that finds no room stays while other workers' trials run: if one of
    them dies, its trial goes stale after the grace period and this worker reruns it."""
    variant = VARIANTS[variant_name]
    device = device_spec if isinstance(device_spec, torch.device) else resolve_device(device_spec or cfg.train.device)
    study = open_study(cfg, variant, url, create=False)
    last: dict[str, Any] = {}
    objective = make_objective(cfg, variant, device, url, study, progress, last)
    tag = f"[{cfg.name}/{variant_name}]"
    waiting = False
    while True:
        storage.fail_stale(study)
        trials = study.get_trials(deepcopy=False)
        why = budget_mod.full(trials, stored_budget(study, cfg), cfg.train.steps)
        if why:
            running = sum(t.state == optuna.trial.TrialState.RUNNING for t in trials)
            if not running or not wait:
                log(f"{tag} {why}: this worker is done")
                break
            if not waiting:
                log(f"{tag} {why}; waiting for {running} running trial(s), to rerun any whose worker dies")
                waiting = True
            time.sleep(storage.heartbeat_s())
            continue
        waiting = False
        last.clear()
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
        except (ValueError, optuna.exceptions.UpdateFinishedTrialError):
            # Another worker failed our trial as stale (its heartbeats were late: an overloaded
            # host or storage) and re-queued it; Optuna then refuses our result. Go on.
            if "number" not in last or budget_mod.outcome(frozen(study, last["number"])) != "lost":
                raise
            log(f"{tag} trial {last['number']}: declared lost by another worker (no heartbeat for {storage.grace_s()} s) "
                "and re-queued; this run's result is discarded")
            continue
        if "number" in last:
            log(f"{tag} {trial_line(frozen(study, last['number']), metric=cfg.eval.metrics[0])}")
        if "stopped" in last:  # the machine's fault: stop with one line (the trial is queued again)
            raise last["stopped"]
    return study


def run_variants(cfg: StudyConfig, variants: list[str], url: str, device_spec: str | torch.device | None = None,
                 log: Callable[[str], None] = _log.info, progress: bool = True, wait: bool = True) -> None:
    """Run trials of every variant until all budgets are spent: first whatever each variant has
    open, then (with `wait`) stay on each while other workers' trials run, to rerun any whose worker
    dies. So a worker never idles on one variant's last running trial while another variant has
    trials to run (with --workers 2 and --variant all, the second worker used to wait out the
    first one's trial before starting the next variant)."""
    for v in variants:
        run_worker(cfg, v, url, device_spec, log=log, progress=progress, wait=False)
    if wait:
        for v in variants:
            run_worker(cfg, v, url, device_spec, log=log, progress=progress, wait=True)


def trial_line(t: optuna.trial.FrozenTrial, metric: str) -> str:
    ua = t.user_attrs
    o = budget_mod.outcome(t)
    value = f"{t.value:.4g}" if t.value is not None else "nan"
    line = f"trial {t.number}: {o}, {metric} = {value} ({ua.get('seconds', 0):.1f}s, {ua.get('steps', 0)} D steps on {ua.get('device', '?')})"
    if o != "complete" and (ua.get("error") or ua.get("reason")):
        line += f" - {ua.get('error') or ua.get('reason')}"
    return line


