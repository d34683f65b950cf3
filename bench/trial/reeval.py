"""Metrics after the fact: `bench eval` re-evaluates saved checkpoints without retraining, and
`bench fid` measures FID between two image folders or saved statistics (stylegan2-ada's
`calc_metrics.py` habit: a separate entry point over saved snapshots).

`bench eval STUDY [--variant V] [--metrics M ...]` loads each saved generator checkpoint of the
study's trials (G's moving average where the study set `[train] g_ema`, as training scored it),
samples the same fixed z as training did (seed `[eval] seed`, the same BN mode), computes the metrics and *appends* `{"kind": "eval", "source": "bench eval", ...}` records to the
trial's metrics.jsonl: nothing is overwritten and a value already logged for a (step, metric) is
not recomputed unless `--again` asks for another record. Because generation and metrics are the
training loop's own functions, re-evaluating a metric of the study file reproduces the value
logged during training. Each append to a finished trial is sealed in its manifest (the command,
step, metrics, byte range and sha256: manifest.append_sealed), so `bench audit` can tell it from a
record appended by hand, recompute it in a rerun (`evaluate_checkpoint`), and reports read it.

`bench fid A B [--features NAME]` (a registered extractor: inception, lenet-digits5k, ...): A and B are folders of images (png, jpg,
jpeg; not recursive) or `.npz` statistics with `mu` and `sigma` (the harness's own, pytorch-fid's
or TTUR's); `--save-stats` writes A's statistics for later use. Images are read as 8-bit RGB for
Inception (grey tiled) and as 8-bit grey for LeNet.
"""

from __future__ import annotations

import io
import json
import logging
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from bench import data as data_mod
from bench import records
from bench.config import StudyConfig
from bench.errors import ConfigError, HarnessError
from bench.gan.variants import VARIANTS
from bench.metrics import METRICS, extractors, fidelity, provenance
from bench.metrics.base import extract

_log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def logged(tdir: Path, names: list[str]) -> set[tuple[int, str]]:
    """(step, metric) pairs that already have a value in a trial's metrics log (sealed records only:
    a record appended by hand does not stop `bench eval` from computing the value)."""
    return {(int(r["step"]), n) for r in records.sealed_records(tdir) if r.get("kind") == "eval" for n in names if n in r}


def evaluate_checkpoint(cfg: StudyConfig, variant: str, ckpt: Path, names: list[str], ctx: Any, z: torch.Tensor,
                        device: torch.device) -> dict[str, float]:
    """The metrics `names` of one saved generator on the fixed z, as training evaluates them."""
    from bench.gan.architectures import ARCHITECTURES
    from bench.trial.train import evaluate

    G = VARIANTS[variant].build_g(ARCHITECTURES[cfg.model.architecture], cfg.model.z_dim, ctx.data.shape, cfg.model.width).to(device)
    G.load_state_dict(records.load_weights(ckpt, map_location=device))  # a damaged file: one line naming it (issue #10)
    return evaluate(G, cfg, ctx, z, names)[0]


def command_line(cfg: StudyConfig, variants: list[str], names: list[str], device_spec: str | None, again: bool) -> str:
    """The `bench eval` command that makes these records, as a seal names it."""
    return " ".join(["bench eval", cfg.name, "--variant", ",".join(variants), "--metrics", *names]
                    + (["--device", device_spec] if device_spec else []) + (["--again"] if again else []))


def eval_study(cfg: StudyConfig, variants: list[str], names: list[str], device_spec: str | None = None,
               again: bool = False, log: Callable[[str], None] = _log.info) -> list[dict[str, Any]]:
    """Evaluate `names` on every saved checkpoint of the variants' trials; returns the appended records."""
    from bench.trial import manifest
    from bench.trial.train import fixed_z, metric_context, resolve_device

    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(f"--metrics {unknown[0]!r} is not a metric; expected some of {', '.join(METRICS)}")
    unfit = [n for n in names if not METRICS[n].supports(cfg.data.dataset)]
    if unfit:
        fits = [n for n, m in METRICS.items() if m.supports(cfg.data.dataset)]
        raise ConfigError(f"--metrics {unfit[0]!r} does not apply to dataset {cfg.data.dataset!r}; expected some of {', '.join(fits)}")
    device = resolve_device(device_spec or cfg.train.device)
    data = data_mod.load(cfg.data.dataset, data_mod.resolve_root(cfg.data.root))
    ctx = metric_context(cfg, data, device)
    z = fixed_z(max(METRICS[n].num_samples for n in names), cfg.model.z_dim, cfg.eval.seed, device)
    command = command_line(cfg, variants, names, device_spec, again)
    added: list[dict[str, Any]] = []
    found = 0
    for variant in variants:
        for tdir in records.trial_dirs(cfg.name, variant):
            have = logged(tdir, names)
            for step, ckpt in records.scored_checkpoints(tdir, cfg.train.g_ema):
                found += 1
                todo = [n for n in names if again or (step, n) not in have]
                if not todo:
                    continue
                values = evaluate_checkpoint(cfg, variant, ckpt, todo, ctx, z, device)
                rec = {"kind": "eval", "source": "bench eval", "step": step, **values, "extractors": provenance(ctx, todo)}
                # What a rerun needs to recompute the values: the metrics, the z (seed, count) and G's mode.
                manifest.append_sealed(tdir, rec, {"command": command, "source": "bench eval", "step": step, "metrics": todo,
                                                   "eval_seed": cfg.eval.seed, "z_samples": int(z.shape[0]),
                                                   "generator_mode": cfg.eval.generator_mode})
                added.append({"variant": variant, "trial": tdir.name, **{k: v for k, v in rec.items() if k != "extractors"}})
                log(f"[{cfg.name}/{variant}] {tdir.name} step {step}: "
                    + ", ".join(f"{n} = {values[n]:.6g}" for n in todo))
    if not found:
        raise HarnessError(f"study {cfg.name!r} has no saved checkpoints for {', '.join(variants)} under "
                           f"{records.study_dir(cfg.name)}; run `bench study` with [train] keep_checkpoints = true first")
    return added


# ---------------------------------------------------------------- bench fid


def extractor_for(name: str, device: torch.device, weights: str = "") -> extractors.Extractor:
    """A registered extractor by name (`bench list` shows them)."""
    if name not in extractors.EXTRACTORS:
        raise ConfigError(f"--features {name!r} is not a registered extractor; expected one of {', '.join(extractors.EXTRACTORS)}")
    return extractors.EXTRACTORS[name].build(device, weights)


def check_saved_features(sources: list[Path], features_name: str) -> None:
    """Saved statistics (.npz with provenance) made with other features than --features: refused by
    the features they hold and the flag that matches them, before any network is built or fetched."""
    if features_name not in extractors.EXTRACTORS:
        raise ConfigError(f"--features {features_name!r} is not a registered extractor; expected one of {', '.join(extractors.EXTRACTORS)}")
    wanted = extractors.EXTRACTORS[features_name].produces
    for source in sources:
        if not (source.suffix == ".npz" and source.is_file()):
            continue
        z = records.load_arrays(source)
        held = json.loads(str(z["meta"])).get("extractor") if "meta" in z else None
        if held and wanted and held != wanted:
            match = [k for k, s in extractors.EXTRACTORS.items() if s.produces == held]
            dim = f" ({z['mu'].shape[0]}-d)" if "mu" in z else ""
            raise HarnessError(f"{source}: the features differ: it holds statistics of {held}{dim}, not of {wanted} (--features {features_name}); "
                               + (f"use --features {match[0]}" if match else "compute both sides with the same features"))


def load_folder(folder: Path, grey: bool) -> torch.Tensor:
    """(N, C, H, W) uint8 images of a folder, sorted by name; C = 1 for grey, else 3 (RGB)."""
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if len(files) < 2:
        raise HarnessError(f"{folder}: found {len(files)} images ({', '.join(IMAGE_EXTENSIONS)}); FID needs at least 2")
    arrays = []
    for p in files:
        with Image.open(p) as im:
            a = np.asarray(im.convert("L" if grey else "RGB"))
        arrays.append(a[None] if grey else a.transpose(2, 0, 1))
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise HarnessError(f"{folder}: images of different sizes {sorted(shapes)[:3]}; resize them to one size first")
    return torch.from_numpy(np.stack(arrays))


def statistics_of(source: Path, ext: extractors.Extractor, device: torch.device, batch_size: int, features_name: str) -> tuple[dict[str, np.ndarray], str]:
    """(mu, sigma) of a folder or a saved `.npz`, and a one-line description."""
    if source.is_dir():
        shape = extractors.EXTRACTORS[features_name].input_shape
        images = load_folder(source, grey=shape is not None and shape[0] == 1)
        if shape is not None and tuple(images.shape[1:]) != shape:
            raise HarnessError(f"{source}: images are {tuple(images.shape[1:])} (C, H, W); the {features_name} features take {shape}")
        feats = extract(ext, images, device, batch_size)[ext.layers[0]]
        return fidelity.statistics(feats), f"{len(images)} images in {source}"
    if source.suffix == ".npz" and source.is_file():
        z = records.load_arrays(source)  # a damaged or pickled .npz: one line naming it (issue #10)
        if "mu" not in z or "sigma" not in z:
            raise HarnessError(f"{source}: expected arrays 'mu' and 'sigma', found {', '.join(z)}")
        stats = {"mu": z["mu"].astype(np.float64), "sigma": z["sigma"].astype(np.float64)}
        meta = json.loads(str(z["meta"])) if "meta" in z else {}
        if meta and (meta.get("extractor"), meta.get("sha256")) != (ext.name, ext.sha256):
            raise HarnessError(f"{source}: statistics of {meta.get('extractor')} (sha256 {str(meta.get('sha256'))[:12]}…), "
                               f"not of {ext.name} (sha256 {ext.sha256[:12]}…); use --features to match")
        if stats["mu"].shape[0] != stats["sigma"].shape[0]:
            raise HarnessError(f"{source}: mu {stats['mu'].shape} and sigma {stats['sigma'].shape} do not match")
        return stats, f"statistics {source}" + (f" ({meta.get('count')} images)" if meta.get("count") else "")
    raise HarnessError(f"{source}: expected a folder of images or a .npz file with mu and sigma")


def save_stats(path: Path, stats: dict[str, np.ndarray], ext: extractors.Extractor, count: int | None) -> None:
    buf = io.BytesIO()
    meta = json.dumps({**ext.provenance(), "count": count})
    np.savez(buf, mu=stats["mu"], sigma=stats["sigma"], meta=np.array(meta))
    records.atomic_write_bytes(path, buf.getvalue())


def fid_between(a: Path, b: Path, features_name: str = "inception", device_spec: str = "auto", batch_size: int = 200,
                weights: str = "", save: Path | None = None) -> dict[str, Any]:
    from bench.trial.train import resolve_device

    device = resolve_device(device_spec)
    check_saved_features([a, b], features_name)  # before any weights are looked for, let alone downloaded
    spec = extractors.EXTRACTORS[features_name]
    if spec.locate is not None:
        weights = str(spec.locate(weights, key="--weights"))  # a missing file is named as this command's flag
    ext = extractor_for(features_name, device, weights)
    sa, da = statistics_of(a, ext, device, batch_size, features_name)
    sb, db = statistics_of(b, ext, device, batch_size, features_name)
    if sa["mu"].shape != sb["mu"].shape:
        raise HarnessError(f"{a} has {sa['mu'].shape[0]}-d statistics and {b} {sb['mu'].shape[0]}-d; were they made with the same features?")
    if save is not None:
        count = int(da.split()[0]) if a.is_dir() else None
        save_stats(save, sa, ext, count)
    value = fidelity.frechet_distance(sa, sb)
    return {"fid": value, "a": da, "b": db, **ext.provenance(), "finite": math.isfinite(value)}
