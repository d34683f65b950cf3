"""`bench sample`: a trial's generated samples as files, for another scorer (clean-fid, pytorch-fid)
or a human (issue 19, point 4).

G is rebuilt as the variant's trials built it (`Variant.build_g`: the variant's hidden activation)
and loaded with the weights the trial's evaluation scored at the chosen step
(`records.scored_checkpoint_path`: the moving average where `[train] g_ema` > 0). The z are the
study's fixed evaluation draws (`[eval] seed`, so the first N samples are the first N the trial was
scored on) or those of another seed, passed through the variant's prior (`Variant.latent`: the
VAE's and IMLE's N(0, I), the GANs' U(-1, 1)), and generated in the study's `[eval]
generator_mode`, in batches of `[eval] batch_size`, as evaluation does (`train.generate`).

Images are written as one PNG per sample (00000.png, ...), quantised as every metric sees them
(`round(x * 255)`, extractors.to_uint8): grey as 8-bit grey, colour as RGB. 2-D points (the
mixture datasets) are one table: points.csv (x, y) and points.npy (float32, (N, 2)).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import torch

from bench import records, storage
from bench.config import StudyConfig
from bench.errors import ConfigError, HarnessError
from bench.gan.variants import VARIANTS
from bench.metrics.extractors import to_uint8
from bench.study.probe import generator
from bench.study.runner import optuna_study_name
from bench.study.seeds import best_trial
from bench.trial.train import fixed_z, full_precision, generate, resolve_device


def pick_trial(cfg: StudyConfig, variant: str, url: str, number: int | None) -> optuna.trial.FrozenTrial:
    """The variant's best search trial (lowest objective), or trial `number`."""
    st = storage.open_storage(url, heartbeat=False)
    name = optuna_study_name(cfg, variant)
    if name not in storage.study_names(st):
        raise ConfigError(f"storage {storage.mask(url)} holds no study {name!r}; run `bench study {cfg.name} --variant {variant}` first")
    study = optuna.load_study(study_name=name, storage=st)
    if number is None:
        return best_trial(study)
    match = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not match:
        raise ConfigError(f"--trial {number}: study {name!r} has trials {', '.join(str(t.number) for t in study.get_trials(deepcopy=False)) or 'none'}")
    return match[0]


def checkpoint(cfg: StudyConfig, variant: str, trial: optuna.trial.FrozenTrial, step: int | None) -> tuple[int, Path]:
    """(step, weights file): the trial's best step by default, the scored copy (EMA) where it has one."""
    tdir = records.trial_dir(cfg.name, variant, trial.number)
    saved = records.scored_checkpoints(tdir, cfg.train.g_ema)
    if step is None:
        step = trial.user_attrs.get("best_step")
        if step is None:
            raise HarnessError(f"{cfg.name}/{variant} trial {trial.number} has no best step (state {trial.state.name.lower()}); "
                               f"pass --step, one of {', '.join(str(s) for s, _ in saved) or 'none saved'}")
    path = records.scored_checkpoint_path(tdir, int(step), cfg.train.g_ema)
    if not path.is_file():
        raise ConfigError(f"--step {step}: {cfg.name}/{variant} trial {trial.number} has no saved checkpoint there ({path}); "
                          f"saved steps: {', '.join(str(s) for s, _ in saved) or 'none (run with [train] keep_checkpoints = true)'}")
    return int(step), path


def samples_of(cfg: StudyConfig, variant: str, weights: Path, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """(N, C, H, W) images in [0, 1] or (N, 2) points: G at `weights` on the N first draws of `seed`."""
    from bench import data as data_mod

    shape = data_mod.load(cfg.data.dataset, data_mod.resolve_root(cfg.data.root)).shape
    G = generator(cfg, variant, shape, device)
    G.load_state_dict(records.load_weights(weights, map_location=device))
    z = VARIANTS[variant].latent(fixed_z(n, cfg.model.z_dim, seed, device))  # (N, z_dim) from G's prior
    with torch.no_grad(), full_precision():
        return generate(G, z, cfg.eval.batch_size, cfg.eval.generator_mode).detach().float().cpu()


def write_files(samples: torch.Tensor, out: Path) -> list[Path]:
    """One PNG per image, or points.csv and points.npy for 2-D points; every file written atomically."""
    if samples.ndim == 2:
        points = samples.numpy().astype(np.float32)  # (N, 2)
        buf = io.BytesIO()
        np.save(buf, points)
        text = "x,y\n" + "".join(f"{x!r},{y!r}\n" for x, y in points.tolist())
        paths = [out / "points.csv", out / "points.npy"]
        records.atomic_write_bytes(paths[0], text.encode())
        records.atomic_write_bytes(paths[1], buf.getvalue())
        return paths
    from PIL import Image

    pixels = to_uint8(samples).numpy()  # (N, C, H, W) uint8
    paths = []
    for i, x in enumerate(pixels):
        im = Image.fromarray(x[0], mode="L") if x.shape[0] == 1 else Image.fromarray(x.transpose(1, 2, 0), mode="RGB")
        buf = io.BytesIO()
        im.save(buf, format="png")
        paths.append(out / f"{i:05d}.png")
        records.atomic_write_bytes(paths[-1], buf.getvalue())
    return paths


def write_samples(cfg: StudyConfig, variant: str, url: str, out: Path, n: int, trial: int | None = None, step: int | None = None,
                  seed: int | None = None, device_spec: str | None = None) -> dict[str, Any]:
    """Write N samples of a trial's checkpoint into `out` (a new or empty folder); return what was written."""
    if variant not in VARIANTS:
        raise ConfigError(f"--variant {variant!r} is not a variant; expected one of {', '.join(VARIANTS)}")
    if n < 1:
        raise ConfigError(f"--n {n}: expected a positive integer")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out}: {'not a folder' if not out.is_dir() else 'not empty'}; expected a new or empty folder "
                          "(samples of two checkpoints in one folder would be scored as one set)")
    frozen = pick_trial(cfg, variant, url, trial)
    at, weights = checkpoint(cfg, variant, frozen, step)
    device = resolve_device(device_spec or cfg.train.device)
    z_seed = cfg.eval.seed if seed is None else seed
    samples = samples_of(cfg, variant, weights, n, z_seed, device)
    if not torch.isfinite(samples).all():
        raise HarnessError(f"{cfg.name}/{variant} trial {frozen.number} step {at}: G's outputs are not finite (a diverged trial)")
    records.ensure_writable(out)
    paths = write_files(samples, out)
    return {"trial": frozen.number, "step": at, "weights": weights, "seed": z_seed, "n": n, "files": paths,
            "z": "the fixed evaluation z ([eval] seed)" if seed is None else f"seed {seed}"}
