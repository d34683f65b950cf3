"""`bench probe`: what a single score hides, measured on each variant's best checkpoint.

1. The sampling spread. Retraining with a new seed moves FID far more than drawing new z does
   (Lucic et al. 2018 report the former: 50 seed reruns). The best checkpoint of each variant's
   best search trial (the configuration `bench seeds` reruns) is scored again with K evaluation
   seeds: seed 0 is the study's own `[eval] seed` (so the first value reproduces the logged one),
   the others derived from it; each seed draws the evaluation z and the metric's own randomness
   (KID subsets). The spread of these K values is the sampling spread; the report sets it beside
   the training-seed spread of the phase-3 reruns.
2. The memorization check (after Alaa et al. 2022's authenticity; see metrics/neighbours.py): in
   the feature space of the study's first metric that has an extractor (else raw pixels or
   points), the share of generated samples whose nearest training image t is closer than t's own
   nearest other training image, beside the same share for the held-out test images (the baseline
   a generator that does not copy is read against), and the 8 samples nearest their training
   neighbour (relative to its gap) above those neighbours, as a picture.

Results: results/<study>/probe/<variant>.json and <variant>-nearest.png (records.probe_path);
`bench report` shows them. Needs the trial's saved checkpoints (`[train] keep_checkpoints`).
"""

from __future__ import annotations

import io
import logging
import math
import time
from typing import Any, Callable

import numpy as np
import optuna
import torch

from bench import records, storage
from bench.config import StudyConfig
from bench.errors import ConfigError, HarnessError
from bench.gan.variants import VARIANTS
from bench.metrics import METRICS, neighbours
from bench.metrics.base import extract
from bench.metrics.extractors import to_uint8
from bench.search.samplers import derive_seed
from bench.study.status import optuna_study_name
from bench.study.seeds import best_trial, seeds_study_name
from bench.trial.train import evaluate, fixed_z, metric_context, resolve_device

_log = logging.getLogger(__name__)

SHOWN = 8  # samples shown beside their nearest training images


def eval_seeds(base: int, k: int) -> list[int]:
    """The study's evaluation seed, then k - 1 seeds derived from it."""
    return [base] + [derive_seed(base, "probe", i) for i in range(1, k)]


def source_trial(cfg: StudyConfig, variant: str, url: str) -> optuna.trial.FrozenTrial:
    """The trial the seed reruns were made from when there are any, else the best search trial."""
    st = storage.open_storage(url, heartbeat=False)
    names = storage.study_names(st)
    search_name = optuna_study_name(cfg, variant)
    if search_name not in names:
        raise ConfigError(f"storage {storage.mask(url)} holds no study {search_name!r}; run `bench study {cfg.name} --variant {variant}` first")
    search = optuna.load_study(study_name=search_name, storage=st)
    if seeds_study_name(cfg, variant) in names:
        made_from = optuna.load_study(study_name=seeds_study_name(cfg, variant), storage=st).user_attrs.get("source_trial")
        match = [t for t in search.get_trials(deepcopy=False) if t.number == made_from]
        if match:
            return match[0]
    return best_trial(search)


def feature_space(cfg: StudyConfig) -> str:
    """The extractor of the study's first metric that has one; "" = raw samples."""
    return next((METRICS[m].extractor for m in cfg.eval.metrics if METRICS[m].extractor), "")


def _features(ctx: Any, kind: str, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    if not kind:
        return x.flatten(1).double() if x.ndim == 2 else (to_uint8(x).flatten(1).double() / 255.0)
    ext = ctx.extractor(kind)
    return extract(ext, to_uint8(x), device, ctx.batch_size)[ext.layers[0]]


def nearest_png(samples: torch.Tensor, train: torch.Tensor, mem: dict[str, Any], gap: torch.Tensor) -> tuple[bytes, list[dict[str, Any]]]:
    """Top row: the SHOWN samples nearest their training neighbour relative to its gap; bottom row: those neighbours."""
    import torchvision.utils

    ratio = (mem["distance"] / gap[mem["index"]].clamp_min(1e-12)).cpu()
    pick = torch.argsort(ratio)[:SHOWN]
    idx = mem["index"].cpu()[pick]
    grid = torch.cat([samples[pick].cpu().clamp(0, 1), train[idx].cpu()])
    buf = io.BytesIO()
    torchvision.utils.save_image(grid, buf, format="png", nrow=len(pick), padding=2, pad_value=1.0)
    shown = [{"sample": int(s), "train_index": int(t), "distance": float(mem["distance"][s]), "gap": float(gap[t])}
             for s, t in zip(pick.tolist(), idx.tolist())]
    return buf.getvalue(), shown


def generator(cfg: StudyConfig, variant: str, shape: tuple[int, ...], device: torch.device) -> torch.nn.Module:
    """G as the variant's trials built it (its hidden activation: the VAE's decoder has ReLU where
    the architecture's G has LeakyReLU; the weights alone cannot tell them apart)."""
    from bench.gan.architectures import ARCHITECTURES

    return VARIANTS[variant].build_g(ARCHITECTURES[cfg.model.architecture], cfg.model.z_dim, shape, cfg.model.width).to(device)


def probe_variant(cfg: StudyConfig, variant: str, url: str, k: int = 5, samples: int = 0, device_spec: str | None = None,
                  log: Callable[[str], None] = _log.info) -> dict[str, Any]:
    """Score the best checkpoint with k evaluation seeds and run the memorization check; write and return the record."""
    from bench import data as data_mod

    if k < 2:
        raise ConfigError(f"--z-seeds {k}: expected at least 2 (a spread needs two values)")
    clock = time.perf_counter()
    trial = source_trial(cfg, variant, url)
    step = trial.user_attrs.get("best_step")
    tdir = records.trial_dir(cfg.name, variant, trial.number)
    ckpt = records.scored_checkpoint_path(tdir, int(step), cfg.train.g_ema) if step is not None else None
    if ckpt is None or not ckpt.is_file():
        raise HarnessError(f"{cfg.name}/{variant} trial {trial.number}: no saved checkpoint of its best step {step} "
                           f"({ckpt or tdir}); run the study with [train] keep_checkpoints = true")
    device = resolve_device(device_spec or cfg.train.device)
    data = data_mod.load(cfg.data.dataset, data_mod.resolve_root(cfg.data.root))
    ctx = metric_context(cfg, data, device)
    G = generator(cfg, variant, data.shape, device)
    G.load_state_dict(records.load_weights(ckpt, map_location=device))
    objective = cfg.eval.metrics[0]
    n = METRICS[objective].num_samples
    latent = VARIANTS[variant].latent
    values, first = [], None
    for s in eval_seeds(cfg.eval.seed, k):
        ctx.seed = s
        out, images = evaluate(G, cfg, ctx, latent(fixed_z(n, cfg.model.z_dim, s, device)), [objective])
        values.append(out[objective])
        first = images if first is None else first
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    log(f"[{cfg.name}/{variant}] trial {trial.number} step {step}: {objective} over {k} evaluation seeds "
        f"{finite.mean():.5g} ± {finite.std(ddof=1) if len(finite) > 1 else math.nan:.3g} (logged {trial.value:.5g})")

    kind = feature_space(cfg)
    m = min(samples or n, len(first), len(data.test))
    gen = first[:m].detach().float().cpu()
    train_f = _features(ctx, kind, data.train, device).to(device)
    mem = neighbours.memorization(_features(ctx, kind, gen, device).to(device), train_f)
    test_share = neighbours.memorization(_features(ctx, kind, data.test[:m], device).to(device), train_f)["share"]
    record: dict[str, Any] = {
        "study": cfg.name, "variant": variant, "source_trial": trial.number, "step": int(step), "hparams": trial.user_attrs.get("hparams"),
        "objective": objective, "logged_value": trial.value, "eval_seeds": eval_seeds(cfg.eval.seed, k), "values": values,
        "sampling_mean": float(finite.mean()) if len(finite) else math.nan,
        "sampling_std": float(finite.std(ddof=1)) if len(finite) > 1 else math.nan,
        "memorization": {"feature_space": kind or "raw samples", "samples": m, "train_images": len(data.train),
                         "share": mem["share"], "test_share": test_share},
        "device": str(device),
    }
    if gen.ndim == 4:
        gap = neighbours.kth_neighbour_distance(train_f, 1)
        png, shown = nearest_png(gen, data.train, mem, gap)
        records.atomic_write_bytes(records.probe_image_path(cfg.name, variant), png)
        record["memorization"]["shown"] = shown
    record["seconds"] = round(time.perf_counter() - clock, 3)
    records.write_json(records.probe_path(cfg.name, variant), record)
    log(f"[{cfg.name}/{variant}] memorization in {record['memorization']['feature_space']}: {mem['share']:.3f} of {m} samples "
        f"inside a training image's nearest-neighbour gap (test images: {test_share:.3f})")
    return record
