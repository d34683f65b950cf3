"""One training loop for every variant, read top to bottom (Lucic et al. 2018, PROTOCOL.md).

A step is one D update on a real batch and a fake batch from fresh z ~ U(-1, 1); G is updated
once every `disc_iters` steps on another fresh z. G and D use Adam with the same learning rate
and beta1, beta2 = 0.999. The variant's recipe supplies the loss, an optional penalty, an
optional after-D-step hook and any per-step state. At every checkpoint the generator is
evaluated on a fixed z (seed `eval.seed`) with every metric of the study, its weights are saved,
and `on_eval` is told the objective (the Optuna pruning hook).

Nothing is read back to the host between log intervals. Non-finite loss terms or metrics end
the trial as *diverged* with the reason recorded; the best value over the checkpoints evaluated
before that stands, as in the paper (best = minimum FID over all checkpoints of a run).
"""

from __future__ import annotations

import copy
import io
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from . import data as data_mod
from . import manifest, preview, records
from .config import StudyConfig
from .errors import Diverged
from .metrics import METRICS, MetricContext, extractor_provenance
from .models import ARCHITECTURES
from .samplers import derive_seed
from .variants import Variant


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from .errors import ConfigError

        raise ConfigError(f"device {spec!r} was asked for but no CUDA device is available here; use 'auto' or 'cpu'")
    return dev


def trial_seeds(study_seed: int, number: int) -> dict[str, int]:
    """Every seed of a trial, derived from (study seed, trial number) and recorded in config.json."""
    return {name: derive_seed(study_seed, number, name) for name in ("torch", "data_order", "numpy", "python")}


def data_root(cfg: StudyConfig) -> Path:
    return data_mod.resolve_root(cfg.data.root)


@dataclass
class TrialResult:
    outcome: str  # "complete" or "diverged"
    value: float  # best objective over checkpoints (inf when none is finite)
    best_step: int | None
    steps: int  # D steps actually run
    seconds: float
    device: str
    reason: str = ""
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    extractors: dict[str, Any] = field(default_factory=dict)  # feature extractors the metrics used (for the manifest)


def fixed_z(n: int, z_dim: int, seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, z_dim, generator=g) * 2 - 1).to(device)  # (N, z_dim), U(-1, 1)


@torch.no_grad()
def generate(G: torch.nn.Module, z: torch.Tensor, batch_size: int, mode: str) -> torch.Tensor:
    """Images from a fixed z. mode 'eval' uses BN running statistics (the paper's); 'train' uses
    batch statistics on a copy of G, for runs too short for running averages to settle."""
    net = copy.deepcopy(G).train() if mode == "train" else G.eval()
    out = torch.cat([net(z[i : i + batch_size]) for i in range(0, len(z), batch_size)])
    G.train()
    return out


def evaluate(G: torch.nn.Module, cfg: StudyConfig, ctx: MetricContext, z: torch.Tensor) -> tuple[dict[str, float], torch.Tensor]:
    images = generate(G, z, cfg.eval.batch_size, cfg.eval.generator_mode)
    values = {}
    # Metrics may draw random numbers or seed torch (an extractor trained on first use does); the
    # fork keeps training's random stream the same whether or not they do, so reruns are bit-identical.
    with torch.random.fork_rng(devices=[z.device] if z.device.type == "cuda" else []):
        for name in cfg.eval.metrics:
            m = METRICS[name]
            values[name] = m.compute(ctx, images[: m.num_samples])["value"]
    return values, images


def _finite_or_raise(terms: Mapping[str, torch.Tensor], step: int) -> dict[str, float]:
    values = {k: float(v) for k, v in terms.items()}  # the one host sync per log interval
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        raise Diverged(f"non-finite {', '.join(bad)} at D step {step}")
    return values


def run_trial(
    cfg: StudyConfig,
    variant: Variant,
    hp: Mapping[str, Any],
    seeds: Mapping[str, int],
    tdir: Path,
    device: torch.device,
    on_eval: Callable[[int, float], None] | None = None,
) -> TrialResult:
    t0 = time.perf_counter()
    manifest.seed_everything(seeds, cfg.train.deterministic)
    data = data_mod.load(cfg.data.dataset, data_root(cfg))
    arch = ARCHITECTURES[cfg.model.architecture]
    G = arch.generator(cfg.model.z_dim, data.shape, cfg.model.width).to(device)
    D = arch.discriminator(data.shape, cfg.model.width, bool(hp["d_batchnorm"])).to(device)
    betas = (float(hp["beta1"]), 0.999)
    opt_g = torch.optim.Adam(G.parameters(), lr=hp["learning_rate"], betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=hp["learning_rate"], betas=betas)
    stream = data_mod.make_stream(data.train, cfg.train.batch_size, seeds["data_order"], device, cfg.data.workers)
    ctx = MetricContext(data, device, cfg.eval.batch_size)
    objective = cfg.eval.metrics[0]
    z_eval = fixed_z(max(METRICS[m].num_samples for m in cfg.eval.metrics), cfg.model.z_dim, cfg.eval.seed, device)
    log = tdir / "metrics.jsonl"
    B, state = cfg.train.batch_size, dict(variant.initial_state)
    result = TrialResult("complete", math.inf, None, 0, 0.0, str(device))
    images = None
    acc: dict[str, torch.Tensor] = {}
    records.append_jsonl(log, {"kind": "data", "step": 0, "dataset": data.name, "source": data.source,
                               "fingerprint": data.fingerprint(), **stream.describe()})

    def z_batch() -> torch.Tensor:
        return torch.rand(B, cfg.model.z_dim, device=device) * 2 - 1  # (B, z_dim), U(-1, 1)

    try:
        for step in range(1, cfg.train.steps + 1):
            # --- D step: real batch, fake batch from fresh z (no gradient into G) ---
            x_real = stream.next()  # (B, C, H, W)
            with torch.no_grad():
                x_fake = G(z_batch())
            d_terms = variant.loss.d(D(x_real), D(x_fake), state)
            loss_d = d_terms["loss"]
            if variant.penalty is not None:
                p_terms = variant.penalty(D, x_real, x_fake, hp)
                loss_d = loss_d + p_terms["loss"]
                d_terms = {**d_terms, **{f"penalty_{k}": v for k, v in p_terms.items()}}
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            if variant.after_d_step is not None:
                variant.after_d_step(D, hp)
            if variant.update_state is not None:
                state = dict(variant.update_state(state, d_terms, hp))
            acc.update({f"d_{k}": v.detach() for k, v in d_terms.items()})

            # --- G step every disc_iters D steps, on fresh z ---
            if step % int(hp["disc_iters"]) == 0:
                g_terms = variant.loss.g(D(G(z_batch())), state)
                opt_g.zero_grad(set_to_none=True)
                g_terms["loss"].backward()
                opt_g.step()
                acc.update({f"g_{k}": v.detach() for k, v in g_terms.items()})
            result.steps = step

            if step % cfg.train.log_every == 0 or step == cfg.train.steps:
                values = _finite_or_raise(acc, step)
                values.update({k: float(v) for k, v in state.items() if isinstance(v, (int, float, torch.Tensor))})
                records.append_jsonl(log, {"kind": "train", "step": step, **values})

            if step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps:
                metrics, images = evaluate(G, cfg, ctx, z_eval)
                records.append_jsonl(log, {"kind": "eval", "step": step, "seconds": time.perf_counter() - t0, **metrics})
                if cfg.train.keep_checkpoints:
                    buf = io.BytesIO()
                    torch.save(G.state_dict(), buf)
                    records.atomic_write_bytes(records.checkpoint_path(tdir, step), buf.getvalue())
                result.evaluations.append({"step": step, **metrics})
                value = metrics[objective]
                if not math.isfinite(value):
                    raise Diverged(f"non-finite {objective} at D step {step}")
                if value < result.value:
                    result.value, result.best_step = value, step
                if on_eval is not None:
                    on_eval(step, value)
    except Diverged as e:
        result.outcome, result.reason = "diverged", str(e)
        records.append_jsonl(log, {"kind": "diverged", "step": result.steps, "reason": str(e)})
    finally:
        result.seconds = time.perf_counter() - t0
        result.extractors = extractor_provenance(ctx)
    if images is not None and torch.isfinite(images).all():
        records.atomic_write_bytes(tdir / "samples.png", preview.samples_png(images, data.test))
    return result
