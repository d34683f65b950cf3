"""Load a study into one tidy DataFrame: one row per trial x evaluated checkpoint.

The rows follow compare_gan's results layout (one row per evaluated checkpoint, hyperparameters
flattened into columns) and are built from what the runner stores: each Optuna study
`<study>:<variant>` keeps the resolved config in its user attributes, and each trial keeps
hparams, outcome, reason, steps, seconds, device, sampler, best_step and evaluations. The trial
folder's metrics.jsonl, where it is on this machine, adds to them (log_evaluations: only records
the trial's manifest vouches for): metrics added later with `bench eval`, and the checkpoints of
pruned and failed trials, which have no `evaluations` attribute; with neither, a trial keeps the
values reported to the pruner (objective only).

Columns of the tidy frame (`load`):
    study, dataset, variant, sampler, pruner, space   where the trial comes from
    trial, state, reason, paper_default                state: complete, pruned, diverged, failed,
                                                       running, lost (a FAIL with no recorded
                                                       outcome: a dead worker's trial, retried)
    trials_spent                                       budget spent when the trial started: its rank
                                                       among the variant's budget-counting trials
    steps, seconds, device                             what the trial spent (D steps, wall seconds)
    best_step, value                                   as stored by the runner
    trial_dir                                          its folder on this machine ("" if not here)
    step                                               the checkpoint's D step (NaN: none evaluated)
    hp_<name>                                          every hyperparameter, fixed ones included
    <metric>                                           every metric evaluated at the checkpoint

`frame.attrs` carries what the rows cannot: the objective metric, all metric names, each study's
config and stored budget per variant, and each variant's Optuna search distributions (for importance), so the frame round-trips
through trials.parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import records, storage
from bench.errors import ConfigError, HarnessError

STATES = ("complete", "pruned", "diverged", "failed", "running", "lost")
SCORED = ("complete", "pruned", "diverged")  # states whose best checkpoint is a score (pruned: a partial one)
FULL_LENGTH = ("complete", "diverged")  # trials run to the end (or to divergence): what a report analyses
BUDGET = ("complete", "pruned", "diverged", "failed", "running")  # states that spend the budget
ID_COLUMNS = ["study", "dataset", "variant", "sampler", "pruner", "space", "trial", "state", "reason", "paper_default",
              "trials_spent", "steps", "seconds", "device", "best_step", "value", "trial_dir", "step"]


def resolve(source: Any, storage_url: str | None = None) -> tuple[str, str | None, Path | None]:
    """(storage URL, study name or None, results folder or None) for a study name, a .toml path,
    a results folder (holding optuna.db), a storage URL, or a StudyConfig."""
    from bench.config import StudyConfig

    if isinstance(source, StudyConfig) or (isinstance(source, str) and "://" not in source and not Path(source).is_dir()):
        from bench.config import load_study

        cfg = source if isinstance(source, StudyConfig) else load_study(source)
        url = storage.resolve_url(cfg, storage_url, create=False)  # a report never creates a study folder (issue #10)
        _exists(url, cfg.name)
        return url, cfg.name, records.study_dir(cfg.name)
    if isinstance(source, str) and "://" in source:
        return source, None, None
    folder = Path(source).resolve()
    db = records.storage_file(folder)
    if storage_url:
        return storage_url, folder.name, folder
    if not db.is_file():
        raise ConfigError(f"{folder} holds no {records.STORAGE_FILE}; pass the study's storage URL (--storage or $BENCH_STORAGE)")
    return f"sqlite:///{db}", folder.name, folder


def _exists(url: str, name: str) -> None:
    """An embedded storage that is not there yet means the study never ran (opening would create it)."""
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        raise HarnessError(f"study {name!r} has no results yet ({url[len('sqlite:///'):]} does not exist); "
                           f"run `bench study {name} --variant <name>` first")


PHASES = {"search": "search", "seeds": "seed_reruns"}  # phase -> the Optuna study's `kind` user attribute


def load_phases(source: Any, study: str | None = None, storage_url: str | None = None, fast: bool = True) -> dict[str, pd.DataFrame]:
    """The tidy frames of a study by phase, in one read of the storage: "search" (the trials of
    `bench study`) and, when there are any, "seeds" (the reruns of `bench seeds`, the paper's
    phase 3, from the Optuna studies <study>:<variant>:seeds)."""
    url, name, folder = resolve(source, storage_url)
    name = study or name
    # Study names hold no ':', so <study>:<variant> and <study>:<variant>:seeds both start with <study>:
    exported = storage.export_studies(url, (lambda n: n.split(":")[0] == name) if name else (lambda n: ":" in n), fast)
    exported = [s for s in exported if "variant" in s["user_attrs"] and "config" in s["user_attrs"]]
    frames = {}
    for phase, kind in PHASES.items():
        mine = [s for s in exported if s["user_attrs"].get("kind", "search") == kind]
        if mine:
            frames[phase] = frame_from_export(mine, folder, phase)
            frames[phase].attrs["source"] = storage.mask(url)
    if "search" not in frames:
        what = f"study {name!r}" if name else "harness study"
        raise HarnessError(f"storage {storage.mask(url)} holds no {what}; run `bench study` first")
    return frames


def load(source: Any, study: str | None = None, storage_url: str | None = None, fast: bool = True,
         phase: str = "search") -> pd.DataFrame:
    """The tidy frame of a study. `source`: a study name or .toml path, a results folder, a storage
    URL, a StudyConfig, or a .parquet written by a report. `study` picks one harness study when a
    storage holds several. `phase`: "search" or "seeds" (see load_phases)."""
    if isinstance(source, (str, Path)) and str(source).endswith(".parquet"):
        return pd.read_parquet(source)
    if phase not in PHASES:
        raise ValueError(f"phase {phase!r}: expected one of {', '.join(PHASES)}")
    frames = load_phases(source, study, storage_url, fast)
    if phase not in frames:
        raise HarnessError(f"study {study_name(frames['search'])!r} has no seed reruns; run `bench seeds` first")
    return frames[phase]


def study_name(frame: pd.DataFrame) -> str:
    names = list(dict.fromkeys(frame["study"]))
    return names[0] if len(names) == 1 else "+".join(names)


def _state(t: dict[str, Any]) -> str:
    outcome = t["user_attrs"].get("outcome")
    if t["state"] == "fail":
        return "failed" if outcome == "failed" else "lost"
    if t["state"] in ("running", "waiting"):
        return t["state"]
    return outcome if outcome in STATES else t["state"]


def _layout(phase: str) -> Any:
    return records.seed_trial_dir if phase == "seeds" else records.trial_dir


def _trial_dirs(study: str, variant: str, results_dir: Path | None, phase: str) -> set[str]:
    """Names of the trial folders of a variant on this machine: under the report's results folder,
    else under the default results root."""
    root = results_dir.parent if results_dir is not None and results_dir.name == study else None
    vdir = _layout(phase)(study, variant, 0, root).parent
    return {p.name for p in vdir.iterdir()} if vdir.is_dir() else set()


def _trial_dir(study: str, variant: str, t: dict[str, Any], results_dir: Path | None, here: set[str], phase: str) -> Path | None:
    """The trial's folder by the layout, or where the worker recorded it if that exists here."""
    path = None
    if records.trial_dir_name(t["number"]) in here:
        root = results_dir.parent if results_dir is not None and results_dir.name == study else None
        path = _layout(phase)(study, variant, t["number"], root)
    recorded = t["user_attrs"].get("trial_dir")
    return path or (Path(recorded) if recorded and Path(recorded).is_dir() else None)


RECORD_KEYS = ("kind", "step", "seconds", "extractors", "source")  # fields of an eval record that are not values


def log_evaluations(tdir: Path | None, left_out: list[str] | None = None) -> list[dict[str, Any]]:
    """The eval records of a trial's metrics log that a report reads, in log order: those the trial's
    manifest vouches for (records.sealed_log: the log as the trial left it, and each `bench eval`
    append whose seal matches its bytes; issue 14, point 9). The one place a report reads a log.
    `left_out`, if given, gets one line per part of the log that no seal vouches for."""
    if tdir is None:
        return []
    log = records.sealed_log(tdir)
    if left_out is not None:
        left_out += log.unexplained
    return [r for r in log.records if r.get("kind") == "eval"]


def _checkpoints(t: dict[str, Any], objective: str, logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trial's checkpoints with every value evaluated at them: the storage's evaluations (what
    the runner kept), then the log's eval records over them in log order, so metrics added later
    with `bench eval` join their checkpoint and a later record of a (step, metric) supersedes an
    earlier one (`bench eval --again`, as _feature_spaces reads it). A trial with neither (a pruned
    trial whose folder is elsewhere) keeps the objective values reported to the pruner."""
    by_step: dict[Any, dict[str, Any]] = {}
    for e in t["user_attrs"].get("evaluations") or []:
        by_step.setdefault(e["step"], {}).update({k: records.from_json_number(v) for k, v in e.items()})
    for r in logged:
        by_step.setdefault(r["step"], {"step": r["step"]}).update(
            {k: records.from_json_number(v) for k, v in r.items() if k not in RECORD_KEYS})
    if by_step:
        return [by_step[step] for step in sorted(by_step)]
    return [{"step": int(s), objective: v} for s, v in sorted(t["intermediate"].items())]


def _metric_names(logged: list[dict[str, Any]]) -> list[str]:
    """Metric names among the values of eval records: a key is a metric unless it is another key of
    its record plus a suffix (compute_metrics logs `<metric>_<part>`, e.g. a precision/recall
    metric's `_precision` and `_recall`)."""
    out: list[str] = []
    for r in logged:
        keys = [k for k in r if k not in RECORD_KEYS]
        out += [k for k in keys if not any(k.startswith(f"{m}_") for m in keys if m != k) and k not in out]
    return out


SPACE_KEYS = ("extractor", "sha256", "code", "preprocess")  # what names a feature space (provenance fields)


def _feature_spaces(logged: list[dict[str, Any]]) -> dict[str, dict[tuple[str, ...], dict[str, Any]]]:
    """{metric: {space: provenance}} of the values that stand in a trial's metrics log: per (step,
    metric) the latest eval record's `extractors` entry (`bench eval --again` supersedes earlier ones)."""
    standing: dict[tuple[Any, str], dict[str, Any]] = {}
    for r in logged:
        for metric, prov in (r.get("extractors") or {}).items():
            standing[(r.get("step"), metric)] = prov
    out: dict[str, dict[tuple[str, ...], dict[str, Any]]] = {}
    for (_, metric), prov in standing.items():
        out.setdefault(metric, {})[tuple(str(prov.get(k, "")) for k in SPACE_KEYS)] = prov
    return out


def check_feature_spaces(spaces: dict[str, dict[tuple[str, ...], dict[str, Any]]],
                         where: dict[tuple[str, tuple[str, ...]], list[str]]) -> dict[str, dict[str, Any]]:
    """Refuse to pool values of one metric computed in different feature spaces (another extractor,
    weights sha256, torch-fidelity version or preprocessing), naming the trials of each space in one
    line; returns {metric: provenance} for the report. A record from before preprocessing was
    recorded (an empty "preprocess") joins the one space that matches it otherwise.
    `spaces`: {metric: {space: provenance}}; `where`: {(metric, space): ["variant trial N", ...]}."""
    out = {}
    for metric, found in spaces.items():
        groups: dict[tuple[str, ...], list[str]] = {}
        for space in sorted(found, key=lambda s: s[-1] == ""):  # recorded preprocessing first
            twin = [g for g in groups if g[:-1] == space[:-1]] if space[-1] == "" else []
            groups.setdefault(twin[0] if len(twin) == 1 else space, []).extend(where[(metric, space)])
        if len(groups) > 1:
            parts = []
            for (extractor, sha, code, prep), trials in groups.items():
                names = ", ".join(trials[:6]) + (", ..." if len(trials) > 6 else "")
                parts.append(f"{extractor} sha256 {sha[:12]}" + (f" {code}" if code else "") + (f" [{prep}]" if prep else "") + f" ({names})")
            raise HarnessError(f"{metric}: checkpoints scored in different feature spaces cannot be pooled: {' vs '.join(parts)}; "
                               f"re-score them in one space (`bench eval STUDY --metrics {metric} --again`) or report them apart")
        out[metric] = found[next(iter(groups))]
    return out


def frame_from_export(exported: list[dict[str, Any]], results_dir: Path | None = None, phase: str = "search") -> pd.DataFrame:
    """Build the tidy frame from `storage.export_studies` records (a pure function of them, plus
    the trial folders' metrics logs for trials whose checkpoints the storage does not hold)."""
    rows: list[dict[str, Any]] = []
    configs: dict[str, Any] = {}
    budgets: dict[str, dict[str, Any]] = {}
    distributions: dict[str, dict[str, str]] = {}
    metrics: list[str] = []
    objective = None
    added: list[str] = []
    spaces: dict[str, dict[str, dict[str, Any]]] = {}
    where: dict[str, list[str]] = {}
    unsealed: list[str] = []  # parts of metrics logs no seal vouches for, left out (issue 14, point 9)
    for s in exported:
        cfg, variant = s["user_attrs"]["config"], s["user_attrs"]["variant"]
        sname = cfg["study"]["name"]
        configs[sname] = cfg
        if s["user_attrs"].get("budget"):  # as `bench study` recorded it, per variant (issue 14: unequal ones are named)
            budgets.setdefault(sname, {})[variant] = s["user_attrs"]["budget"]
        objective = objective or cfg["eval"]["metrics"][0]
        if cfg["eval"]["metrics"][0] != objective:
            raise HarnessError(f"studies with different objectives ({objective}, {cfg['eval']['metrics'][0]}) cannot share one report")
        metrics += [m for m in cfg["eval"]["metrics"] if m not in metrics]
        spent = 0
        here = _trial_dirs(sname, variant, results_dir, phase)
        for t in s["trials"]:
            state = _state(t)
            if state == "waiting":
                continue
            for k, d in t["distributions"].items():
                distributions.setdefault(variant, {})[k] = d
            spent += state in BUDGET
            base = _trial_row(cfg, variant, t, state, spent if state in BUDGET else np.nan)
            tdir = _trial_dir(sname, variant, t, results_dir, here, phase)
            base["trial_dir"] = str(tdir) if tdir is not None else ""
            logged = log_evaluations(tdir, unsealed)
            cps = _checkpoints(t, objective, logged)
            added += [m for m in _metric_names(logged) if m not in added]
            for metric, found in _feature_spaces(logged).items():
                for key, prov in found.items():
                    spaces.setdefault(metric, {}).setdefault(key, prov)
                    where.setdefault((metric, key), []).append(f"{variant} trial {t['number']}")
            if not cps:
                rows.append({**base, "step": np.nan})
            for cp in cps:
                rows.append({**base, **cp})
    metrics += [m for m in added if m not in metrics]  # metrics added with `bench eval` (issue 14, point 4)
    frame = _typed_and_ordered(pd.DataFrame(rows), metrics)
    feature_spaces = check_feature_spaces(spaces, where)
    frame.attrs = {"objective": objective, "metrics": metrics, "configs": configs, "distributions": distributions, "phase": phase,
                   "feature_spaces": feature_spaces, "budgets": budgets, "unsealed": unsealed}
    return frame


def _trial_row(cfg: dict[str, Any], variant: str, t: dict[str, Any], state: str, spent: float) -> dict[str, Any]:
    """The columns of a trial that every one of its checkpoint rows repeats (ID_COLUMNS and hp_*)."""
    ua = t["user_attrs"]
    return {
        "study": cfg["study"]["name"], "dataset": cfg["data"]["dataset"], "variant": variant,
        "sampler": ua.get("sampler") or cfg["study"].get("sampler", ""),
        "pruner": ua.get("pruner") or cfg["study"].get("pruner") or "unrecorded",
        "space": ua.get("space") or cfg["study"].get("space", ""), "trial": t["number"], "state": state,
        "reason": ua.get("reason") or ua.get("error") or "", "paper_default": bool(ua.get("paper_default")),
        "trials_spent": spent, "steps": ua.get("steps"), "seconds": ua.get("seconds"),
        "device": ua.get("device", ""), "best_step": ua.get("best_step"),
        "value": np.nan if t["value"] is None else float(t["value"]),
        **{f"hp_{k}": v for k, v in (ua.get("hparams") or t["params"]).items()},
    }


def _typed_and_ordered(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Metric and spend columns as numbers (NaN where missing), the columns in the frame's order
    (ID_COLUMNS, hp_*, metrics, the rest) and the rows by study, variant, trial and step."""
    for col in [c for c in frame.columns if any(c == m or c.startswith(f"{m}_") for m in metrics)]:
        frame[col] = pd.to_numeric(frame[col].map(records.from_json_number), errors="coerce").astype(float)
    for col in metrics:
        if col not in frame:
            frame[col] = np.nan
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("steps", "seconds", "best_step", "step", "trials_spent"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    hp = sorted(c for c in frame.columns if c.startswith("hp_"))
    rest = [c for c in frame.columns if c not in ID_COLUMNS and c not in hp and c not in metrics]
    return frame[ID_COLUMNS + hp + metrics + rest].sort_values(["study", "variant", "trial", "step"], kind="stable", ignore_index=True)


def per_trial(frame: pd.DataFrame, include_pruned: bool | None = None) -> pd.DataFrame:
    """One row per trial at its best checkpoint (minimum objective, the paper's "best over
    checkpoints"), with `score`: that minimum for trials run to full length (complete, and diverged:
    a divergence is how the run ended, not a cut); +inf for such a trial with no finite checkpoint (a
    diverged run counts as +inf, never as missing); NaN for pruned trials (issue 14: a score after
    partial training is not a score of the run, so they are counted and shown apart, their best in
    `partial_score`), unless `include_pruned` (default: the frame's attrs["include_pruned"], False),
    and for failed, lost and running trials, which are not scores of a run. Every analysis of a
    report (distributions, budget curves, tests, importance, agreement) uses the trials whose
    `score` is not NaN."""
    if include_pruned is None:
        include_pruned = bool(frame.attrs.get("include_pruned", False))
    obj = frame.attrs["objective"]
    values = frame[obj].where(np.isfinite(frame[obj]))
    order = values.fillna(np.inf).to_numpy()
    ranked = frame.assign(_o=order).sort_values(["study", "variant", "trial", "_o", "step"], kind="stable")
    best = ranked.drop_duplicates(["study", "variant", "trial"], keep="first").drop(columns="_o")
    score = best[obj].where(np.isfinite(best[obj]), np.inf)
    counted = analysed_states(include_pruned)
    best = best.assign(score=score.where(best["state"].isin(counted), np.nan),
                       partial_score=score.where(best["state"] == "pruned", np.nan)).rename(columns={"step": "best_checkpoint"})
    best.attrs = {**frame.attrs, "include_pruned": include_pruned}
    return best.reset_index(drop=True)


def analysed_states(include_pruned: bool = False) -> tuple[str, ...]:
    """The states whose best score enters a report's analyses: FULL_LENGTH, and pruned if asked."""
    return SCORED if include_pruned else FULL_LENGTH


def scores(best: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Per (dataset, variant): the analysed trials' best values (inf for diverged), in trial order."""
    scored = best[best["score"].notna()]
    return {key: g["score"].to_numpy(float) for key, g in scored.groupby(["dataset", "variant"], sort=False)}


def check_scored(best: pd.DataFrame) -> None:
    """Raise a clear message when no trial of the study has a score yet."""
    if best.empty or not best["score"].notna().any():
        counts = best["state"].value_counts().to_dict() if not best.empty else {}
        have = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no trials"
        hint = "; pruned trials are left out of the scores unless you pass --include-pruned" if counts.get("pruned") else ""
        raise HarnessError(f"no completed trial to report yet ({have}){hint}; run `bench study` until a trial completes")
