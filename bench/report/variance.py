"""The variance split and the memorization check in a report, from `bench probe`'s records.

Training-seed spread: the standard deviation of the best score over the phase-3 seed reruns of a
variant's best configuration (`bench seeds`). Sampling spread: the standard deviation of one
checkpoint's score over K evaluation seeds (`bench probe`). Each rerun's score was itself measured
with one evaluation z, so the reruns' variance holds both parts: var(seeds) ~ var(training) +
var(sampling); the training part is estimated as max(0, var(seeds) - var(sampling)), and the
larger of the two parts is said to dominate. (The rerun's score is a minimum over checkpoints,
whose sampling noise is not exactly one checkpoint's; the estimate is a first-order split.)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import records

VARIANCE_COLUMNS = ["dataset", "variant", "reruns", "seed_std", "z_seeds", "sampling_std", "training_std", "dominates"]
MEMO_COLUMNS = ["dataset", "variant", "source_trial", "step", "feature_space", "samples", "train_images", "share", "test_share", "image"]


def _root(frame: pd.DataFrame, study: str) -> Path | None:
    """The results root the study's trial folders live under, if any is recorded."""
    dirs = frame.loc[(frame["study"] == study) & frame["trial_dir"].astype(bool), "trial_dir"] if "trial_dir" in frame else []
    for d in dirs:
        p = Path(d)
        if p.parent.parent.name == study:
            return p.parent.parent.parent
    return None


def load_probes(frame: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    """{(study, variant): the `bench probe` record} for the variants of the frame that have one."""
    out = {}
    for (study, variant), _ in frame.groupby(["study", "variant"], sort=False):
        path = records.probe_path(study, variant, _root(frame, study))
        if path.is_file():
            rec = records.read_json(path)
            img = records.probe_image_path(study, variant, _root(frame, study))
            rec["image"] = str(img) if img.is_file() else ""
            out[(study, variant)] = rec
    return out


def _num(v: Any) -> float:
    v = records.from_json_number(v)
    return float(v) if v is not None else math.nan


def variance_table(frame: pd.DataFrame, probes: dict[tuple[str, str], dict[str, Any]], seeds_best: pd.DataFrame | None) -> pd.DataFrame:
    """Per (dataset, variant) with a probe or seed reruns: the two spreads and which dominates."""
    rows = []
    datasets = frame.drop_duplicates(["study", "variant"]).set_index(["study", "variant"])["dataset"]
    keys = list(dict.fromkeys(list(probes) + ([] if seeds_best is None else list(seeds_best.groupby(["study", "variant"], sort=False).groups))))
    for study, variant in keys:
        rec = probes.get((study, variant))
        reruns, seed_std = 0, math.nan
        if seeds_best is not None:
            g = seeds_best[(seeds_best["study"] == study) & (seeds_best["variant"] == variant) & seeds_best["score"].notna()]
            v = g["score"].to_numpy(float)
            v = v[np.isfinite(v)]
            reruns, seed_std = len(v), (float(v.std(ddof=1)) if len(v) > 1 else math.nan)
        z = [_num(x) for x in rec["values"]] if rec else []
        z = [x for x in z if math.isfinite(x)]
        samp = float(np.std(z, ddof=1)) if len(z) > 1 else math.nan
        train = math.sqrt(max(0.0, seed_std ** 2 - samp ** 2)) if not (math.isnan(seed_std) or math.isnan(samp)) else math.nan
        if math.isnan(train):
            dom = ""
        else:
            dom = "training seed" if train > samp else "sampling (evaluation z)"
        rows.append({"dataset": datasets.get((study, variant), ""), "variant": variant, "reruns": reruns, "seed_std": seed_std,
                     "z_seeds": len(z), "sampling_std": samp, "training_std": train, "dominates": dom})
    return pd.DataFrame(rows, columns=VARIANCE_COLUMNS)


def memorization_table(frame: pd.DataFrame, probes: dict[tuple[str, str], dict[str, Any]]) -> pd.DataFrame:
    datasets = frame.drop_duplicates(["study", "variant"]).set_index(["study", "variant"])["dataset"]
    rows = []
    for (study, variant), rec in probes.items():
        m = rec.get("memorization") or {}
        rows.append({"dataset": datasets.get((study, variant), ""), "variant": variant, "source_trial": rec.get("source_trial"),
                     "step": rec.get("step"), "feature_space": m.get("feature_space", ""), "samples": m.get("samples"),
                     "train_images": m.get("train_images"), "share": _num(m.get("share")), "test_share": _num(m.get("test_share")),
                     "image": rec.get("image", "")})
    return pd.DataFrame(rows, columns=MEMO_COLUMNS)
