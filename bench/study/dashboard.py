"""What optuna-dashboard (and any tool reading Optuna's storage) shows of a study (issue 19, point 3).

Optuna's own places, filled in by the runner:

    metric names    `study.set_metric_names([objective])`: the objective by its name
                    (fid_lenet_digits5k_1k_test), not "Objective 0"
    study note      the study's description, the variant's recipe, the objective, budget and search,
                    and the resolved configuration as a readable table (optuna_dashboard.save_note, a
                    Markdown note in the study's system attributes); written once, never over a
                    note someone edited in the dashboard
    fixed:<name>    a user attribute for every hyperparameter of a trial that is not one of its Optuna
                    params: the `[study] fixed` values, keys outside the search space, and trial 0's
                    paper default where it lies outside the space (wgan's disc_iters 5); searched
                    ones are params as before, so `fixed:` + params = the trial's hyperparameters
    samples.png     each trial's sample grid as an Optuna artifact (optuna.artifacts.upload_artifact)
                    in a file-system artifact store under the study's results folder
                    (records.artifacts_dir: results/<study>/artifacts/); `bench dashboard` serves it

A study created before these existed gains metric names and the note the next time `bench study`
opens it; its finished trials keep what they had (no artifact, no `fixed:` attributes), and nothing
reads these back, so nothing depends on them.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

import optuna

from bench import records
from bench.config import StudyConfig

FIXED_PREFIX = "fixed:"  # user attribute of a hyperparameter that is not a param of the trial


def describe_study(study: optuna.Study, cfg: StudyConfig, variant: Any, budget: str = "") -> None:
    """Name the objective and, where optuna-dashboard is installed and the study has no note yet,
    write the study's note. Idempotent: a second call writes nothing."""
    name_objective(study, cfg)
    try:
        from optuna_dashboard import get_note, save_note
    except ImportError:  # the note is optuna-dashboard's; plain Optuna has no place for it
        return
    if not get_note(study):
        save_note(study, study_note(cfg, variant, budget))


def name_objective(study: optuna.Study, cfg: StudyConfig) -> None:
    """The objective by its metric's name (a search study, and a variant's seed reruns)."""
    if study.metric_names != [cfg.eval.metrics[0]]:
        with warnings.catch_warnings():  # experimental since Optuna 3.2, stable in use; the warning would reach every user
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([cfg.eval.metrics[0]])


def study_note(cfg: StudyConfig, variant: Any, budget: str = "") -> str:
    """The study's note, Markdown: what it is, what is minimised, how it is searched, and every key."""
    from bench import registries

    objective = cfg.eval.metrics[0]
    recipe = ", ".join(f"{k} = {v}" for k, v in variant.recipe().items() if v not in (None, [], ()))
    lines = [f"## {cfg.name} / {variant.name}", ""]
    if cfg.study.description:
        lines += [cfg.study.description, ""]
    lines += [
        f"- **objective** (minimised, lower is better): `{objective}`: {registries.doc('metrics', objective)}",
        f"- **other metrics** at each checkpoint: {', '.join(f'`{m}`' for m in cfg.eval.metrics[1:]) or 'none'}",
        f"- **variant** `{variant.name}`: {recipe}",
        f"- **search**: {cfg.study.space} space, {cfg.study.sampler} sampler, pruner {cfg.study.pruner}"
        + (f"; budget {budget}" if budget else ""),
        "- **trial 0** is the paper's default setting (user attribute `paper_default`)"
        + (f"; held in every trial: {', '.join(f'{k} = {v}' for k, v in cfg.study.fixed.items())}" if cfg.study.fixed else ""),
        f"- hyperparameters that are not searched are user attributes `{FIXED_PREFIX}<name>`; "
        "each trial's sample grid is its artifact `samples.png`",
        "",
        "| key | value |",
        "|---|---|",
    ]
    for section, values in cfg.to_dict().items():
        for key, value in values.items():
            lines.append(f"| {section}.{key} | {_cell(value)} |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text.replace("|", "\\|") or "(empty)"


def record_fixed(trial: optuna.Trial, hp: Mapping[str, Any]) -> dict[str, Any]:
    """Set `fixed:<name>` on the trial for every hyperparameter that is not one of its params; returns them."""
    fixed = {k: v for k, v in hp.items() if k not in trial.params}
    for key, value in fixed.items():
        trial.set_user_attr(FIXED_PREFIX + key, value)
    return fixed


def hyperparameters(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """A finished trial's hyperparameters as Optuna holds them: its params and its `fixed:` attributes."""
    return {**{k[len(FIXED_PREFIX):]: v for k, v in t.user_attrs.items() if k.startswith(FIXED_PREFIX)}, **t.params}


def artifact_store(study: str) -> optuna.artifacts.FileSystemArtifactStore:
    """The study's file-system artifact store (results/<study>/artifacts/), made on first use."""
    folder = records.artifacts_dir(study)
    folder.mkdir(parents=True, exist_ok=True)
    return optuna.artifacts.FileSystemArtifactStore(str(folder))


def served_artifact_store(folder: Path | None) -> optuna.artifacts.FileSystemArtifactStore | None:
    """The artifact store `bench dashboard` serves for a results folder: its artifacts/ where there is
    one (None for a bare storage URL, or a study made before artifacts, whose trials have none)."""
    artifacts = None if folder is None else Path(folder) / records.ARTIFACTS_DIR
    return optuna.artifacts.FileSystemArtifactStore(str(artifacts)) if artifacts is not None and artifacts.is_dir() else None


def attach_samples(trial: optuna.Trial, study: str, tdir: Path) -> str | None:
    """Upload the trial's sample grid as an artifact of the trial; its artifact id (None when the
    trial left no grid: it diverged before a finite checkpoint)."""
    grid = records.sample_grid_path(tdir)
    if not grid.is_file():
        return None
    with warnings.catch_warnings():  # experimental in some Optuna releases; the warning would reach every user
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.artifacts.upload_artifact(artifact_store=artifact_store(study), file_path=str(grid),
                                                study_or_trial=trial, mimetype="image/png")
