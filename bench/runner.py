"""The study runner: one Optuna study per (study file, variant), a fixed trial budget, resumable.

Running the same command again continues up to the budget and never redoes a finished trial:
the budget counts finished trials (complete, pruned, diverged, failed with an error) and trials
running now. Trial 0 of every search is the variant's paper default, enqueued when the study is
created. Each trial leaves a folder (records.py) and its summary in the storage's user attributes.
"""

from __future__ import annotations

import errno
import math
import os
import platform
import time
import traceback
import warnings
from typing import Any, Callable

import optuna
import torch

from . import manifest, records, space, storage
from .config import StudyConfig
from .errors import ConfigError, HarnessError
from .samplers import SAMPLERS
from .train import resolve_device, run_trial, trial_seeds
from .variants import VARIANTS, Variant

# Failed trials are recorded (the `error` attribute, the traceback in metrics.jsonl) and reported
# in one line by run_variant; Optuna's own traceback for them shows only with `bench --debug`.
optuna.logging.set_verbosity(optuna.logging.WARNING if os.environ.get("BENCH_DEBUG") else optuna.logging.ERROR)


def optuna_study_name(cfg: StudyConfig, variant: str) -> str:
    return f"{cfg.name}:{variant}"


def compat_digest(cfg: StudyConfig) -> str:
    """Hash of everything that changes what a trial computes (the budget and description excluded)."""
    import hashlib
    import json

    d = cfg.to_dict()
    for key in ("trials", "description", "storage", "variants"):
        d["study"].pop(key)
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def counts_toward_budget(t: optuna.trial.FrozenTrial) -> bool:
    S = optuna.trial.TrialState
    if t.state in (S.COMPLETE, S.PRUNED, S.RUNNING):
        return True
    return t.state == S.FAIL and t.user_attrs.get("outcome") == "failed"


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
    st = storage.open_storage(url)
    name = optuna_study_name(cfg, variant.name)
    sampler = SAMPLERS[cfg.study.sampler].make(cfg.study.seed)
    if not create and name not in storage.study_names(st):
        raise ConfigError(f"storage {storage.mask(url)} holds no study {name!r}; create it with `bench study {cfg.name} --variant {variant.name}`")
    study = optuna.create_study(study_name=name, storage=st, sampler=sampler, direction="minimize", load_if_exists=True)
    digest = compat_digest(cfg)
    stored = study.user_attrs.get("compat_digest")
    if stored is None:
        study.set_user_attr("compat_digest", digest)
        study.set_user_attr("config", cfg.to_dict())
        study.set_user_attr("variant", variant.name)
        study.set_user_attr("storage_kind", storage.kind(url))
    elif stored != digest:
        raise ConfigError(
            f"{cfg.source}: storage {storage.mask(url)} already holds study {name!r} made from a different configuration "
            f"(digest {stored}, this file {digest}); use another [study] name or storage")
    if not study.get_trials(deepcopy=False):
        defaults = {k: variant.defaults[k] for k in space.searched(variant.space(cfg.study.space))}
        study.enqueue_trial(defaults, user_attrs={"paper_default": True})
    return study


def make_objective(cfg: StudyConfig, variant: Variant, device: torch.device, url: str) -> Callable[[optuna.Trial], float]:
    def objective(trial: optuna.Trial) -> float:
        with warnings.catch_warnings():  # the paper's default may lie outside the narrow space, on purpose
            warnings.filterwarnings("ignore", message="Fixed parameter .* is out of range", category=UserWarning)
            hp = space.suggest(trial, variant.space(cfg.study.space))
        if trial.user_attrs.get("paper_default"):
            hp = dict(variant.defaults)  # sample 0 is the authors' setting, fixed values included
        seeds = trial_seeds(cfg.study.seed, trial.number)
        tdir = records.trial_dir(cfg.name, variant.name, trial.number)
        if tdir.exists():  # left by an earlier storage: keep it, never overwrite
            tdir.rename(tdir.with_name(f"{tdir.name}.stale-{int(time.time())}"))
        tdir.mkdir(parents=True)
        records.write_json(tdir / "config.json", {
            "study": cfg.name, "variant": variant.name, "recipe": variant.recipe(), "trial": trial.number, "hparams": hp, "seeds": seeds,
            "eval_seed": cfg.eval.seed, "sampler": cfg.study.sampler, "space": cfg.study.space,
            "paper_default": bool(trial.user_attrs.get("paper_default")), "config": cfg.to_dict(),
            "config_digest": cfg.digest(), "storage": storage.mask(url), "environment": environment(device),
        })
        manifest.begin(tdir, cfg, variant.name, trial.number, hp, seeds, device, url)
        for key, value in {"hparams": hp, "seeds": seeds, "sampler": cfg.study.sampler, "space": cfg.study.space,
                           "device": str(device), "trial_dir": str(tdir)}.items():
            trial.set_user_attr(key, value)

        def on_eval(step: int, value: float) -> None:
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at D step {step} with {cfg.eval.metrics[0]} = {value:.4g}")

        result = None
        try:
            result = run_trial(cfg, variant, hp, seeds, tdir, device, on_eval)
        except optuna.TrialPruned:
            trial.set_user_attr("outcome", "pruned")
            raise
        except (KeyboardInterrupt, HarnessError) as e:  # issue #10: not the hyperparameters' fault
            _stopped(trial, tdir, e)
            objective.stopped = e  # type: ignore[attr-defined]
            raise
        except Exception as e:
            if isinstance(e, OSError) and e.errno in _MACHINE_ERRNOS:  # issue #10: a full disk is not the trial's fault
                stop = HarnessError(f"{e.filename or tdir}: {e.strerror}; free space (or fix the folder's permissions) "
                                    "and run the same command again to redo this trial")
                _stopped(trial, tdir, stop)
                objective.stopped = stop  # type: ignore[attr-defined]
                raise
            trial.set_user_attr("outcome", "failed")
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            records.append_jsonl(tdir / "metrics.jsonl", {"kind": "failed", "error": traceback.format_exc()})
            raise
        finally:  # after every record above, the failure line included: the manifest's checksums cover them
            manifest.finish(tdir, result, trial.user_attrs.get("outcome"))
        for key, value in {"outcome": result.outcome, "reason": result.reason, "steps": result.steps,
                           "seconds": round(result.seconds, 3), "best_step": result.best_step,
                           "evaluations": result.evaluations}.items():
            trial.set_user_attr(key, value)
        return result.value

    objective.stopped = None  # type: ignore[attr-defined]
    return objective


def _stopped(trial: optuna.Trial, tdir: Any, e: BaseException) -> None:
    """Record a trial stopped by Ctrl-C ("interrupted") or by the environment ("aborted": missing
    data or weights, a damaged cache). Neither counts toward the budget; run_variant re-enqueues
    the same hyperparameters so the rerun redoes exactly this trial (issue #10)."""
    outcome = "interrupted" if isinstance(e, KeyboardInterrupt) else "aborted"
    reason = "interrupted (Ctrl-C / SIGINT)" if isinstance(e, KeyboardInterrupt) else str(e)
    trial.set_user_attr("outcome", outcome)
    trial.set_user_attr("reason", reason)
    try:
        records.append_jsonl(tdir / "metrics.jsonl", {"kind": outcome, "reason": reason})
    except OSError:
        pass  # the disk that stopped the trial may refuse this line too; the storage holds the reason


# A full or read-only disk, or lost permissions: the machine's fault, so the trial is redone, not spent.
_MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _requeue(study: optuna.Study) -> None:
    """Enqueue again the hyperparameters (and the paper-default mark) of the last, stopped trial."""
    last = study.get_trials(deepcopy=False)[-1]
    if last.state != optuna.trial.TrialState.FAIL or last.user_attrs.get("outcome") == "failed":
        return  # stopped between trials, or a trial that failed on its own: nothing to redo
    attrs = {"retry_of": last.number, **({"paper_default": True} if last.user_attrs.get("paper_default") else {})}
    study.enqueue_trial(dict(last.params), user_attrs=attrs, skip_if_exists=False)


def run_variant(cfg: StudyConfig, variant_name: str, url: str, device_spec: str | None = None,
                log: Callable[[str], None] = print) -> optuna.Study:
    """Run trials of one variant until the budget is spent (or resume a partial study)."""
    variant = VARIANTS[variant_name]
    device = resolve_device(device_spec or cfg.train.device)
    study = open_study(cfg, variant, url)
    objective = make_objective(cfg, variant, device, url)
    budget = cfg.study.trials
    while True:
        done = sum(counts_toward_budget(t) for t in study.get_trials(deepcopy=False))
        if done >= budget:
            break
        t0 = time.perf_counter()
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
        except KeyboardInterrupt:
            _requeue(study)
            raise
        if objective.stopped is not None:  # type: ignore[attr-defined]
            _requeue(study)
            raise objective.stopped  # type: ignore[attr-defined]
        last = study.get_trials(deepcopy=False)[-1]
        value = last.value if last.value is not None else math.nan
        log(f"[{cfg.name}/{variant_name}] trial {last.number}: {last.user_attrs.get('outcome', last.state.name.lower())}, "
            f"{cfg.eval.metrics[0]} = {value:.4g} ({time.perf_counter() - t0:.1f}s on {device})"
            + (f" - {last.user_attrs.get('error') or last.user_attrs.get('reason')}" if last.user_attrs.get("outcome") in ("failed", "diverged") else ""))
    return study


def resolve_storage_url(cfg: StudyConfig, cli_url: str | None = None, create: bool = True) -> str:
    """The storage URL; the default SQLite file's folder is made only when `create` (reports never create one)."""
    url = cli_url or os.environ.get("BENCH_STORAGE") or cfg.study.storage
    if not url:
        sdir = records.study_dir(cfg.name)
        if create:
            records.ensure_writable(sdir)
        elif not (sdir / "optuna.db").is_file():
            raise HarnessError(f"study {cfg.name!r} has no results yet ({sdir / 'optuna.db'} does not exist); "
                               f"run `bench study {cfg.name} --variant <name>` first, or pass --storage")
        url = records.default_storage_url(cfg.name)
    return url



def main_variants(cfg: StudyConfig, variant: str) -> list[str]:
    if variant == "all":
        return list(cfg.study.variants)
    if variant not in VARIANTS:
        raise ConfigError(f"--variant {variant!r} is not a variant; expected 'all' or one of {', '.join(VARIANTS)}")
    return [variant]


