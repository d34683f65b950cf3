"""Where a study stands, read from its storage without importing torch (`bench status`).

Kept apart from runner.py (which imports torch to train) so that `bench status` answers in about
a second: it needs the config, the registries' names (bench/catalogue.py), Optuna and the storage.
"""

from __future__ import annotations

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
