"""Phase 3 of the paper: each variant's best configuration rerun with K seeds (Lucic et al. 2018).

The paper reran the best (run, checkpoint) of its wide search with 50 seeds and reported the
mean ± std of the best FID over those reruns (PROTOCOL.md); the spread over seeds is what a single
"best run" hides. Here:

- Optuna study `<study>:<variant>:seeds`, in the study's own storage, apart from the search study
  `<study>:<variant>`. Its user attributes: kind = "seed_reruns", source_study, source_trial,
  source_value, hparams, compat_digest, config, variant. Trial n is seed rerun n: the same
  hyperparameters, seeds `train.trial_seeds(derive_seed(study seed, "seeds"), n)` (one seed set
  shared by every variant, none equal to a search trial's), the same fixed evaluation z. Its user
  attributes are those of a search trial (hparams, seeds, outcome, steps, seconds, best_step,
  evaluations, device, trial_dir) plus seed_index and source_trial; its value is the best
  objective over its checkpoints, as for a search trial.
- Folders `results/<study>/seeds/<variant>/trial-NNNN/` (records.seed_trial_dir) with config.json,
  manifest.json (phase "seeds"), metrics.jsonl, samples.png and checkpoints, like a search trial.
- Each rerun runs through the runner's objective (runner.make_objective with `seeds_phase`), so it is
  recorded like a search trial, and one stopped by Ctrl-C, SIGTERM or the machine is re-queued with
  its seed index and rerun by the next `bench seeds`.
- `seeds_frame` gives one row per rerun (seeds/seeds.csv); the per-variant table is the report's
  (report.tables.seeds_table, seeds/summary.csv); `bench audit --phase seeds` audits them.

Running the same command again resumes up to K, as `bench study` does; a larger K adds reruns.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Callable

import optuna
import pandas as pd

from bench import records, storage
from bench.config import StudyConfig
from bench.errors import ConfigError, HarnessError
from bench.gan.variants import VARIANTS
from bench.search.samplers import derive_seed
from bench.study import budget, dashboard
from bench.study.runner import Phase, compat_digest, frozen, make_objective
from bench.study.status import optuna_study_name
from bench.trial.train import resolve_device, trial_seeds

_log = logging.getLogger(__name__)

SUFFIX = ":seeds"


def seeds_study_name(cfg_or_name: StudyConfig | str, variant: str) -> str:
    name = cfg_or_name if isinstance(cfg_or_name, str) else cfg_or_name.name
    return f"{name}:{variant}{SUFFIX}"


def rerun_seeds(study_seed: int, index: int) -> dict[str, int]:
    return trial_seeds(derive_seed(study_seed, "seeds"), index)


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    S = optuna.trial.TrialState
    scored = [t for t in study.get_trials(deepcopy=False)
              if t.state == S.COMPLETE and t.value is not None and math.isfinite(t.value)]
    if not scored:
        raise HarnessError(f"study {study.study_name!r} has no complete trial with a finite value to rerun")
    return min(scored, key=lambda t: (t.value, t.number))


def open_seeds_study(cfg: StudyConfig, variant: str, url: str, source_trial: int | None) -> optuna.Study:
    st = storage.open_storage(url)
    search_name = optuna_study_name(cfg, variant)
    if search_name not in storage.study_names(st):
        raise ConfigError(f"storage {storage.mask(url)} holds no study {search_name!r}; run `bench study {cfg.name} --variant {variant}` first")
    search = optuna.load_study(study_name=search_name, storage=st)
    if search.user_attrs.get("compat_digest") != compat_digest(cfg):
        raise ConfigError(f"{cfg.source}: study {search_name!r} in {storage.mask(url)} was made from a different configuration")
    if source_trial is None:
        source = best_trial(search)
    else:
        match = [t for t in search.get_trials(deepcopy=False) if t.number == source_trial]
        if not match or match[0].state != optuna.trial.TrialState.COMPLETE:
            raise ConfigError(f"--trial {source_trial}: study {search_name!r} has no complete trial {source_trial}")
        source = match[0]
    name = seeds_study_name(cfg, variant)
    study = optuna.create_study(study_name=name, storage=st, direction="minimize", load_if_exists=True,
                                sampler=optuna.samplers.RandomSampler(seed=cfg.study.seed))
    dashboard.name_objective(study, cfg)
    made_from = study.user_attrs.get("source_trial")
    if made_from is None:
        for key, value in {"kind": "seed_reruns", "source_study": search_name, "source_trial": source.number,
                           "source_value": source.value, "hparams": source.user_attrs["hparams"],
                           "compat_digest": compat_digest(cfg), "config": cfg.to_dict(), "variant": variant}.items():
            study.set_user_attr(key, value)
    elif made_from != source.number:
        raise ConfigError(f"seed reruns {name!r} were made from trial {made_from}, but trial {source.number} is "
                          f"{'asked for' if source_trial is not None else 'now the best'}; pass --trial {made_from} "
                          "to add seeds to them, or use another storage")
    return study


def seeds_phase(cfg: StudyConfig, variant: str, study: optuna.Study) -> Phase:
    """Seed reruns as the runner's objective runs them: the source trial's hyperparameters, the seeds of
    rerun `origin` (a rerun interrupted and re-queued keeps its seed index), never pruned, no budget
    check of its own (run_seeds counts up to K)."""
    hp, source = study.user_attrs["hparams"], study.user_attrs["source_trial"]

    def summary(me: optuna.trial.FrozenTrial, origin: int) -> dict[str, Any]:
        return {"seed_index": origin, "source_trial": source}

    return Phase("seeds", lambda n: records.seed_trial_dir(cfg.name, variant, n), lambda origin: rerun_seeds(cfg.study.seed, origin),
                 lambda trial, me: dict(hp), lambda me, origin: {"phase": "seeds", **summary(me, origin)}, summary,
                 budgeted=False, pruned=False)


def run_seeds(cfg: StudyConfig, variant: str, url: str, k: int, source_trial: int | None = None,
              device_spec: str | None = None, log: Callable[[str], None] = _log.info) -> optuna.Study:
    """Rerun a variant's best (or a chosen) configuration until it has K seed reruns. A rerun stopped
    by Ctrl-C or the machine is recorded and queued again, as a search trial is (runner.make_objective)."""
    if k <= 0:
        raise ConfigError(f"--seeds {k}: expected a positive integer")
    device = resolve_device(device_spec or cfg.train.device)
    study = open_seeds_study(cfg, variant, url, source_trial)
    last: dict[str, Any] = {}
    objective = make_objective(cfg, VARIANTS[variant], device, url, study, False, last, seeds_phase(cfg, variant, study))
    while sum(budget.counts(t) for t in study.get_trials(deepcopy=False)) < k:
        last.clear()
        study.optimize(objective, n_trials=1, catch=(Exception,), gc_after_trial=False)
        t = frozen(study, last["number"])
        value = t.value if t.value is not None else math.nan
        log(f"[{cfg.name}/{variant} seeds] rerun {t.user_attrs.get('seed_index', t.number)} of trial {study.user_attrs['source_trial']}: "
            f"{t.user_attrs.get('outcome', t.state.name.lower())}, {cfg.eval.metrics[0]} = {value:.4g}")
        if "stopped" in last:  # the machine's fault: stop with one line (the rerun is queued again)
            raise last["stopped"]
    return study


def seeds_frame(study: str, url: str, variants: list[str] | None = None) -> pd.DataFrame:
    """One row per seed rerun: study, variant, phase, seed_index, source_trial, outcome, value, spend, hp_*."""
    st = storage.open_storage(url, heartbeat=False)
    rows: list[dict[str, Any]] = []
    for name in storage.study_names(st):
        head, _, rest = name.partition(":")
        variant = rest[: -len(SUFFIX)] if rest.endswith(SUFFIX) else None
        if head != study or not variant or (variants is not None and variant not in variants):
            continue
        s = optuna.load_study(study_name=name, storage=st)
        for t in s.get_trials(deepcopy=False):
            if not t.state.is_finished() or not budget.counts(t):  # running, queued, or stopped and queued again
                continue
            ua = t.user_attrs
            rows.append({
                "study": study, "variant": variant, "phase": "seeds", "seed_index": ua.get("seed_index", t.number),
                "source_trial": s.user_attrs.get("source_trial"), "source_value": s.user_attrs.get("source_value"),
                "outcome": ua.get("outcome") or t.state.name.lower(), "value": t.value if t.value is not None else math.nan,
                "best_step": ua.get("best_step"), "steps": ua.get("steps"), "seconds": ua.get("seconds"), "device": ua.get("device"),
                **{f"hp_{k}": v for k, v in (ua.get("hparams") or {}).items()},
            })
    return pd.DataFrame(rows)


def write_rows(cfg: StudyConfig, url: str) -> Path:
    """results/<study>/seeds/seeds.csv: one row per seed rerun (seeds_frame). The per-variant table
    beside it is the report's (report.tables.seeds_table), written by `bench seeds`."""
    frame = seeds_frame(cfg.name, url)
    if frame.empty:
        raise HarnessError(f"no seed reruns recorded for study {cfg.name!r}")
    path = records.seeds_rows_path(cfg.name)
    records.atomic_write_bytes(path, frame.to_csv(index=False).encode())
    return path
