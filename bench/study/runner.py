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
import os
import platform
import socket
import sys
import time
import traceback
import warnings
from typing import Any, Callable

import optuna
import torch

from bench import records, storage
from bench.config import StudyConfig
from bench.errors import ConfigError, HarnessError
from bench.gan.variants import VARIANTS, Variant
from bench.study import status as status_mod
from bench.study.status import budget_of, check_budget_change, every_trial_failed, optuna_study_name, status_lines, stored_budget  # noqa: F401 (re-exported)
from bench.search import space
from bench.search.samplers import PRUNERS, SAMPLERS
from bench.study import budget as budget_mod
from bench.trial import manifest
from bench.trial.train import resolve_device, run_trial, trial_seeds

# A full or read-only disk, or lost permissions: the machine's fault, so the trial is redone, not spent.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}

# Keys that do not change what a trial computes: a study may be resumed with other values.
NOT_IN_DIGEST = ("trials", "description", "storage", "variants", "budget_steps", "budget_seconds")


class GiveBack(Exception):
    """A trial asked for when the budget had no room for it: recorded as over_budget, not counted."""


def counts_toward_budget(t: optuna.trial.FrozenTrial) -> bool:
    """Kept for callers of the foundation's name; the rule lives in budget.py."""
    return budget_mod.counts(t)


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
    if not d["study"]["fixed"]:  # no held values: what studies made before the key computed
        d["study"].pop("fixed")
    if d["train"]["g_ema"] == 0:  # off computes what studies made before the key computed: they resume
        d["train"].pop("g_ema")
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def public_config(cfg: StudyConfig) -> dict[str, Any]:
    """The resolved config as recorded in results: the storage URL with its password masked."""
    d = cfg.to_dict()
    d["study"]["storage"] = storage.mask(d["study"]["storage"])
    return d


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def environment(device: torch.device) -> dict[str, Any]:
    env = {
        "python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
        "optuna": optuna.__version__, "device": str(device),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    else:
        env["device_name"] = platform.processor() or platform.machine()
    return env


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
        study.set_user_attr("config", public_config(cfg))
        study.set_user_attr("variant", variant.name)
        study.set_user_attr("storage_kind", storage.kind(url))
    elif stored != digest:
        raise ConfigError(
            f"{cfg.source}: storage {storage.mask(url)} already holds study {name!r} made from a different configuration "
            f"(digest {stored}, this file {digest}); use another [study] name or storage")
    if create:
        study.set_user_attr("budget", budget_of(cfg).to_dict())
        if not study.get_trials(deepcopy=False):
            defaults = {k: variant.defaults_in(cfg.study.space, cfg.study.fixed)[k] for k in space.searched(variant.space(cfg.study.space, cfg.study.fixed))}
            study.enqueue_trial(defaults, user_attrs={"paper_default": True})
    return study


def frozen(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def make_objective(cfg: StudyConfig, variant: Variant, device: torch.device, url: str, study: optuna.Study,
                   progress: bool, last: dict[str, Any]) -> Callable[[optuna.Trial], float]:
    metric = cfg.eval.metrics[0]
    device_name = environment(device)["device_name"]

    def objective(trial: optuna.Trial) -> float:
        last["number"] = trial.number
        me = frozen(study, trial.number)
        origin = storage.origin(me)
        trial.set_user_attr("origin", origin)
        trial.set_user_attr("worker", worker_id())
        why = budget_mod.admits(study.get_trials(deepcopy=False), trial.number, stored_budget(study, cfg), cfg.train.steps)
        if why:
            trial.set_user_attr("outcome", "over_budget")
            trial.set_user_attr("reason", why)
            if me.params or "fixed_params" in me.system_attrs:  # it came from the queue: put it back
                storage.requeue(study, me, retry=False)
            raise GiveBack(why)

        t0 = time.perf_counter()
        spent = {"steps": 0}
        tdir = records.trial_dir(cfg.name, variant.name, trial.number)
        bar = None

        def on_progress(step: int) -> None:
            spent["steps"] = step
            if bar is not None:
                bar.update(step - bar.n)

        def on_eval(step: int, value: float) -> None:
            spent["steps"] = step
            if bar is not None:
                bar.set_postfix_str(f"{metric} {value:.4g}")
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned by {cfg.study.pruner} at D step {step} with {metric} = {value:.4g}")

        def end(outcome: str, reason: str = "", log: dict[str, Any] | None = None) -> None:
            for key, value in {"outcome": outcome, "steps": spent["steps"], "seconds": round(time.perf_counter() - t0, 3)}.items():
                trial.set_user_attr(key, value)
            if reason:
                trial.set_user_attr("error" if outcome == "failed" else "reason", reason)
            if log and tdir.is_dir():
                try:
                    records.append_jsonl(tdir / "metrics.jsonl", log)
                except OSError:
                    pass  # the disk that stopped the trial may refuse this line too; the storage holds the reason

        def stop(e: BaseException) -> None:
            """Ctrl-C/SIGTERM ("interrupted") or the machine ("aborted"): record, re-queue the same
            parameters and seeds, and have run_worker stop after Optuna has recorded the trial."""
            interrupted = isinstance(e, KeyboardInterrupt)
            outcome = "interrupted" if interrupted else "aborted"
            reason = "interrupted (Ctrl-C / SIGINT or SIGTERM)" if interrupted else str(e)
            end(outcome, reason, {"kind": outcome, "step": spent["steps"], "reason": reason})
            now = frozen(study, trial.number)
            # Not when nothing was drawn yet (a fresh trial replaces it), nor when another worker
            # already failed it as stale (and re-queued it).
            if now.state == optuna.trial.TrialState.RUNNING and (now.params or "fixed_params" in now.system_attrs):
                storage.requeue(study, now, retry=True)
            if not interrupted:
                last["stopped"] = e

        # From here on the trial is ours: whatever ends it (Ctrl-C included) is recorded.
        result = None
        try:
            hp, seeds = prepare(trial, me, origin, tdir)
            if progress:
                bar = _progress_bar(f"{cfg.name}/{variant.name} trial {trial.number}", cfg.train.steps)
            result = run_trial(cfg, variant, hp, seeds, tdir, device, on_eval, on_progress)
            for key, value in {"outcome": result.outcome, "reason": result.reason, "steps": result.steps,
                               "seconds": round(result.seconds, 3), "best_step": result.best_step,
                               "evaluations": result.evaluations}.items():
                trial.set_user_attr(key, value)
            return result.value
        except optuna.TrialPruned as e:
            end("pruned", str(e))
            raise
        except (KeyboardInterrupt, HarnessError) as e:  # not the hyperparameters' fault: redo the trial
            stop(e)
            raise
        except Exception as e:
            if isinstance(e, OSError) and e.errno in _MACHINE_ERRNOS:
                stop(HarnessError(f"{e.filename or tdir}: {e.strerror}; free space (or fix the folder's permissions) "
                                  "and run the same command again to redo this trial"))
                raise
            end("failed", f"{type(e).__name__}: {e}", {"kind": "failed", "error": traceback.format_exc()})
            raise
        finally:
            if bar is not None:
                bar.close()
            # After every record above, the failure line included: the manifest's checksums cover them.
            manifest.finish(tdir, result, trial.user_attrs.get("outcome"))

    def prepare(trial: optuna.Trial, me: optuna.trial.FrozenTrial, origin: int, tdir: Any) -> tuple[dict[str, Any], dict[str, int]]:
        """Hyperparameters, seeds (those of the origin), the trial folder and its recorded config."""
        with warnings.catch_warnings():
            # A paper default may lie outside the narrow range (wgan's 5e-5); Optuna says so, rightly.
            warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range")
            hp = space.suggest(trial, variant.space(cfg.study.space, cfg.study.fixed))
        if me.user_attrs.get("paper_default"):
            hp = variant.defaults_in(cfg.study.space, cfg.study.fixed)  # sample 0 is the authors' setting, fixed values included
        seeds = trial_seeds(cfg.study.seed, origin)
        if tdir.exists():  # left by an earlier storage: keep it, never overwrite
            tdir.rename(tdir.with_name(f"{tdir.name}.stale-{int(time.time())}"))
        tdir.mkdir(parents=True)
        records.write_json(tdir / "config.json", {
            "study": cfg.name, "variant": variant.name, "recipe": variant.recipe(), "trial": trial.number, "origin": origin, "hparams": hp,
            "seeds": seeds, "eval_seed": cfg.eval.seed, "sampler": cfg.study.sampler, "pruner": cfg.study.pruner,
            "space": cfg.study.space, "paper_default": bool(me.user_attrs.get("paper_default")),
            "budget": stored_budget(study, cfg).to_dict(), "config": public_config(cfg), "config_digest": cfg.digest(),
            "storage": storage.mask(url), "worker": worker_id(), "environment": environment(device),
        })
        manifest.begin(tdir, cfg, variant.name, trial.number, hp, seeds, device, url)
        for key, value in {"hparams": hp, "seeds": seeds, "sampler": cfg.study.sampler, "pruner": cfg.study.pruner,
                           "space": cfg.study.space, "device": str(device), "device_name": device_name,
                           "trial_dir": str(tdir)}.items():
            trial.set_user_attr(key, value)
        return hp, seeds

    return objective


def _progress_bar(desc: str, total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False, file=sys.stderr, dynamic_ncols=True, disable=None)


def run_worker(cfg: StudyConfig, variant_name: str, url: str, device_spec: str | None = None,
               log: Callable[[str], None] = print, progress: bool = True, wait: bool = True) -> optuna.Study:
    """Join the study of one variant and run trials until its budget is spent.

    With `wait`, a worker that finds no room stays while other workers' trials run: if one of
    them dies, its trial goes stale after the grace period and this worker reruns it."""
    variant = VARIANTS[variant_name]
    device = resolve_device(device_spec or cfg.train.device)
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


def run_variants(cfg: StudyConfig, variants: list[str], url: str, device_spec: str | None = None,
                 log: Callable[[str], None] = print, progress: bool = True, wait: bool = True) -> None:
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


