"""Where a study stands, read from its storage without importing torch (`bench status`).

Kept apart from runner.py (which imports torch to train) so that `bench status` answers in about
a second: it needs the config, the registries' names (bench/catalogue.py), Optuna and the storage.
"""

from __future__ import annotations

from typing import Any

import optuna

from bench import registries, storage
from bench.config import StudyConfig
from bench.errors import ConfigError
from bench.study import budget as budget_mod
from bench.study.budget import Budget


def optuna_study_name(cfg: StudyConfig, variant: str) -> str:
    return f"{cfg.name}:{variant}"


def budget_of(cfg: StudyConfig) -> Budget:
    return Budget(cfg.study.trials, cfg.study.budget_steps, cfg.study.budget_seconds)


def stored_budget(study: optuna.Study, cfg: StudyConfig) -> Budget:
    """The budget every worker obeys: the one `bench study` recorded in the storage."""
    raw = study.user_attrs.get("budget")
    return Budget.from_dict(raw) if raw else budget_of(cfg)


def stored_budgets(cfg: StudyConfig, st: Any) -> dict[str, Budget]:
    """The budget recorded for each variant of this study in the storage `st` (its search studies
    <study>:<variant>, not the seed reruns), in the order they were created."""
    out = {}
    for s in st.get_all_studies():
        parts = s.study_name.split(":")
        if len(parts) == 2 and parts[0] == cfg.name and s.user_attrs.get("budget"):
            out[parts[1]] = Budget.from_dict(s.user_attrs["budget"])
    return out


def unequal_budgets_line(cfg: StudyConfig, url: str) -> str | None:
    """One line naming each variant's stored budget and n (trials done) when the variants of the study
    were given different budgets (an older study, an import); None when they are equal."""
    st = storage.open_storage(url, heartbeat=False)
    budgets = stored_budgets(cfg, st)
    if len(set(budgets.values())) <= 1:
        return None
    done = {v: budget_mod.tally(optuna.load_study(study_name=optuna_study_name(cfg, v), storage=st).get_trials(deepcopy=False)).finished
            for v in budgets}
    return (f"{cfg.name}: unequal budgets: {budget_mod.describe_each(budgets, done)}; comparisons between them rest on these n, "
            f"not on equal budgets; `bench study {cfg.source or cfg.name} --variant all --trials N` gives every variant one budget")


def check_budget_change(cfg: StudyConfig, variants: list[str], url: str, variant_arg: str) -> str | None:
    """Before `bench study` creates or resumes `variants` with the budget of `cfg` (the file's, or
    --trials): refuse (ConfigError) a budget that would leave the study's variants unequal, naming
    how to change it for every variant; return a line saying what changed when the run changes the
    stored budget of variants (every one of them, then), else None. Reads the storage only."""
    stored = stored_budgets(cfg, storage.open_storage(url, heartbeat=False))
    requested = budget_of(cfg)
    kept = budget_mod.left_unequal(stored, requested, variants)
    src = cfg.source or cfg.name
    if kept:
        outside = [v for v in kept if v not in cfg.study.variants]
        how = (f"add {', '.join(outside)} to [study] variants, then " if outside else "") + \
            f"change it for every variant at once: `bench study {src} --variant all --trials N`"
        same = set(kept.values())
        if len(same) == 1:
            (b,) = same
            only_trials = (b.steps, b.seconds) == (requested.steps, requested.seconds)
            how += "; or keep the stored budget" + (f" with --trials {b.trials}" if only_trials else f" ({b.describe()}) in the study file")
        raise ConfigError(f"{src}: --variant {variant_arg} with a budget of {requested.describe()} per variant would leave the "
                          f"variants' budgets unequal ({budget_mod.describe_each(kept)} stored); {how}")
    before = {v: b for v, b in stored.items() if v in variants and b != requested}
    if not before:
        return None
    was = "; ".join(f"{b.describe()} for {', '.join(v for v in before if before[v] == b)}" for b in dict.fromkeys(before.values()))
    return f"{cfg.name}: budget changed to {requested.describe()} per variant, for every variant (was {was})"


def every_trial_failed(cfg: StudyConfig, url: str, variants: list[str]) -> tuple[list[str], str]:
    """(the variants whose every finished trial failed, one line saying so) - ([], "") when none.
    A variant with no result but errors has nothing to compare, so `bench study` exits non-zero."""
    st = storage.open_storage(url, heartbeat=False)
    existing = set(storage.study_names(st))
    bad, counts, first = [], [], ""
    for v in variants:
        name = optuna_study_name(cfg, v)
        if name not in existing:
            continue
        trials = optuna.load_study(study_name=name, storage=st).get_trials(deepcopy=False)
        t = budget_mod.tally(trials)
        if t.finished and t.get("failed") == t.finished:
            bad.append(v)
            counts.append(f"{v} {t.finished} of {t.finished}")
            errors = [str(x.user_attrs.get("error") or "") for x in trials if budget_mod.outcome(x) == "failed"]
            first = first or next((e.splitlines()[0][:200] for e in errors if e.strip()), "")
    if not bad:
        return [], ""
    return bad, (f"{cfg.name}: every trial failed ({', '.join(counts)}), so there is no result to compare"
                 + (f"; the first error: {first}" if first else "")
                 + f"; each trial's error is in its metrics.jsonl under {cfg.name}/; fix the cause, then rerun with a new [study] name or storage")


def main_variants(cfg: StudyConfig, variant: str) -> list[str]:
    if variant == "all":
        return list(cfg.study.variants)
    names = registries.names("variants")
    if variant not in names:
        raise ConfigError(f"--variant {variant!r} is not a variant; expected 'all' or one of {', '.join(names)}")
    return [variant]


def status_lines(cfg: StudyConfig, url: str, variants: list[str], created_only: bool = False) -> list[str]:
    """One line per variant: done/budget, running, failed, the rest, the spend. With `created_only`,
    variants whose study is not created yet are counted in one last line instead of one line each."""
    st = storage.open_storage(url, heartbeat=False)
    existing = set(storage.study_names(st))
    lines, missing = [], []
    for v in variants:
        name = optuna_study_name(cfg, v)
        if name not in existing:
            missing.append(v)
            if not created_only:
                lines.append(f"{name}: not created (budget {budget_of(cfg).describe()})")
            continue
        study = optuna.load_study(study_name=name, storage=st)
        lines.append(budget_mod.status_line(name, study.get_trials(deepcopy=False), stored_budget(study, cfg), cfg.train.steps))
    if created_only and missing:
        if len(missing) == 1 and len(variants) == 1:
            lines.append(f"{optuna_study_name(cfg, missing[0])}: not created (budget {budget_of(cfg).describe()})")
        else:
            lines.append(f"{cfg.name}: {len(missing)} of {len(variants)} variants not created yet "
                         f"(budget {budget_of(cfg).describe()} each; `bench study {cfg.name} --variant NAME` starts one)")
    return lines
