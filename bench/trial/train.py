"""One training loop for every variant, read top to bottom (Lucic et al. 2018, PROTOCOL.md).

A step is one D update on a real batch and a fake batch from z ~ U(-1, 1) (the variant's
`latent` maps the draws to its prior); G is updated once every `disc_iters` steps on the same z,
or on a fresh one where the recipe says so (compare_gan resampled for WGAN-GP only). G and D use
Adam with the same learning rate and beta1, beta2 = 0.999. The variant's recipe supplies the
network that plays D, the step strategies (steps.py) with its loss, penalty and hook, and any
per-step state, which goes in and out of `train_step` explicitly. At every checkpoint the generator is
evaluated on a fixed z (seed `eval.seed`) with every metric of the study, its weights are saved,
and `on_eval` is told the objective (the Optuna pruning hook). Where `[train] g_ema` sets a decay,
the generator evaluated is G's moving average (ema.py), saved beside G's own weights.

Nothing is read back to the host between log intervals. Non-finite loss terms or metrics end
the trial as *diverged* with the reason recorded; the best value over the checkpoints evaluated
before that stands, as in the paper (best = minimum FID over all checkpoints of a run).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from bench import data as data_mod
from bench import records
from bench.config import StudyConfig
from bench.data.stream import make_stream
from bench.data.base import Data
from bench.errors import Diverged, HarnessError
from bench.gan.architectures import ARCHITECTURES
from bench.gan.steps import Nets
from bench.gan.variants import Variant
from bench.metrics import METRICS, compute_metrics, extractor_provenance, provenance
from bench.metrics.base import MetricContext, full_precision
from bench.search.samplers import derive_seed
from bench.trial import ema as ema_mod
from bench.trial import manifest, preview, resume, speed, tboard

_log = logging.getLogger(__name__)


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(spec)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from bench.errors import ConfigError

        raise ConfigError(f"device {spec!r} was asked for but no CUDA device is available here; use 'auto' or 'cpu'")
    return dev


def trial_seeds(study_seed: int, number: int) -> dict[str, int]:
    """Every seed of a trial, derived from (study seed, trial number) and recorded in config.json."""
    return {name: derive_seed(study_seed, number, name) for name in ("torch", "data_order", "numpy", "python")}


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
    resumed: dict[str, Any] | None = None  # {"from": folder, "step": D step} when it continued a stopped trial


def fixed_z(n: int, z_dim: int, seed: int, device: torch.device) -> torch.Tensor:
    """The fixed evaluation draws, U(-1, 1); pass them through `variant.latent` for G's prior."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, z_dim, generator=g) * 2 - 1).to(device)  # (N, z_dim), U(-1, 1)


def adam_beta1(beta1: float) -> float:
    """β1 as Adam takes it. The wide space draws β1 from the paper's closed range [0, 1]; random
    search never draws 1, but Optuna's GP and QMC samplers can land on the bound exactly, and Adam
    refuses β1 = 1. 1 is read as the largest double below 1 (equal to 1 in 16 digits; the recorded
    value stays 1.0): with Adam's bias correction the first moment is then the running mean of the
    gradients. Any other value is used as it is, so existing trials train as before."""
    b = float(beta1)
    return math.nextafter(1.0, 0.0) if b == 1.0 else b


def build_nets(variant: Variant, architecture: str, shape: tuple[int, int, int], width: float, z_dim: int,
               hp: Mapping[str, Any], device: torch.device) -> Nets:
    """G, the network the variant needs as D, and one Adam each (same lr and beta1, beta2 = 0.999)."""
    arch = ARCHITECTURES[architecture]
    G = variant.build_g(arch, z_dim, shape, width).to(device)
    D = variant.build_d(arch, shape, width, z_dim, hp).to(device)
    betas = (adam_beta1(hp["beta1"]), 0.999)
    has_d = any(True for _ in D.parameters())  # IMLE's D role "none" builds one without parameters
    return Nets(G, D, speed.adam(G.parameters(), hp["learning_rate"], betas, device),
                speed.adam(D.parameters(), hp["learning_rate"], betas, device) if has_d else None)


def track_params(variant: Variant, state: Mapping[str, Any], player: str, net: torch.nn.Module) -> Mapping[str, Any]:
    """The state with the player's parameter history brought up to date before its update, for a
    recipe with a penalty on its own parameters (historical averaging); the state itself otherwise."""
    pp = variant.param_penalty
    if pp is None:
        return state
    return {**state, pp.key(player): pp.track(state.get(pp.key(player)), net)}


def updates_g(step: int, hp: Mapping[str, Any]) -> bool:
    """Whether training step `step` (from 1) ends with a G update: every disc_iters steps."""
    return step % int(hp["disc_iters"]) == 0


def train_step(variant: Variant, nets: Nets, hp: Mapping[str, Any], state: Mapping[str, Any], step: int,
               x_real: torch.Tensor, z_batch: Callable[[], torch.Tensor]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """One training step: the D update, the state update, and the G update every disc_iters steps.
    Returns the new state and the step's terms, prefixed d_ and g_ (tensors, not read back)."""
    terms: dict[str, torch.Tensor] = {}
    z = z_batch()  # (B, z_dim)
    if variant.d_step is not None:
        state = track_params(variant, state, "d", nets.D)
        d_terms = variant.d_step(variant, nets, x_real, z, state, hp)
        if variant.update_state is not None:
            state = {**state, **variant.update_state(state, d_terms, hp)}
        terms.update({f"d_{k}": v.detach() for k, v in d_terms.items()})
    if updates_g(step, hp):
        state = track_params(variant, state, "g", nets.G)
        g_terms = variant.g_step(variant, nets, x_real, z_batch() if variant.fresh_z_for_g else z, state, hp)
        terms.update({f"g_{k}": v.detach() for k, v in g_terms.items()})
    return dict(state), terms


@torch.no_grad()
def generate(G: torch.nn.Module, z: torch.Tensor, batch_size: int, mode: str) -> torch.Tensor:
    """Images from a fixed z. mode 'eval' uses BN running statistics (the paper's); 'train' uses
    batch statistics on a copy of G, for runs too short for running averages to settle."""
    net = copy.deepcopy(G).train() if mode == "train" else G.eval()
    out = torch.cat([net(z[i : i + batch_size]) for i in range(0, len(z), batch_size)])
    G.train()
    return out


def evaluate(G: torch.nn.Module, cfg: StudyConfig, ctx: MetricContext, z: torch.Tensor,
             metrics: list[str] | None = None) -> tuple[dict[str, float], torch.Tensor]:
    """Every metric on images from the fixed z; metrics that invert G get it in the same BN mode."""
    from bench.metrics.triangles_pr import generator_fn

    names = list(metrics or cfg.eval.metrics)
    with full_precision():  # generation and metrics in fp32 whatever training's [train] tf32 says
        images = generate(G, z, cfg.eval.batch_size, cfg.eval.generator_mode)
        needs_g = any(METRICS[n].needs_generator for n in names)
        ctx.begin(generator_fn(G, cfg.eval.generator_mode) if needs_g else None)
        # Metrics may draw random numbers or seed torch; the fork keeps training's random stream the
        # same whether or not they do, so reruns are bit-identical.
        with torch.random.fork_rng(devices=[z.device] if z.device.type == "cuda" else []):
            return compute_metrics(ctx, names, images), images


def metric_context(cfg: StudyConfig, data: Data, device: torch.device) -> MetricContext:
    return MetricContext(data, device, cfg.eval.batch_size, seed=cfg.eval.seed, inception_weights=cfg.eval.inception_weights,
                         z_dim=cfg.model.z_dim)


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
    on_progress: Callable[[int], None] | None = None,  # told the D step at every log interval
    plan: resume.Plan | None = None,  # save full states (and continue from one): runner trials, not audit reruns
) -> TrialResult:
    t0 = time.perf_counter()
    manifest.seed_everything(seeds, cfg.train.deterministic)
    data = data_mod.load(cfg.data.dataset, data_mod.resolve_root(cfg.data.root))
    nets = build_nets(variant, cfg.model.architecture, data.shape, cfg.model.width, cfg.model.z_dim, hp, device)
    ema = ema_mod.make(nets.G, cfg.train.g_ema)  # before speed.prepare: the copy is evaluated, never compiled
    speed.prepare(nets.G, cfg.train)  # [train] precision / compile / channels_last (speed.py)
    speed.prepare(nets.D, cfg.train)
    G = nets.G
    stream = make_stream(data.train, cfg.train.batch_size, seeds["data_order"], device, cfg.data.workers)
    ctx = metric_context(cfg, data, device)
    objective = cfg.eval.metrics[0]
    z_eval = variant.latent(fixed_z(max(METRICS[m].num_samples for m in cfg.eval.metrics), cfg.model.z_dim, cfg.eval.seed, device))
    log = records.metrics_path(tdir)
    B, state = cfg.train.batch_size, dict(variant.initial_state)
    result = TrialResult("complete", math.inf, None, 0, 0.0, str(device))
    images = None
    board = tboard.open_board(cfg.train.tensorboard, cfg.name, tdir, variant.name, hp, objective)  # OFF unless [train] tensorboard
    acc: dict[str, torch.Tensor] = {}
    records.append_jsonl(log, {"kind": "data", "step": 0, "dataset": data.name, "source": data.source,
                               "fingerprint": data.fingerprint(), **stream.describe()})

    def z_batch() -> torch.Tensor:
        return variant.latent(torch.rand(B, cfg.model.z_dim, device=device) * 2 - 1)  # (B, z_dim), from U(-1, 1)

    first, spent = 1, 0.0  # where the loop starts and the device-seconds a continued trial had spent
    st = None
    if plan is not None and plan.source is not None:
        try:
            st = resume.load(records.resume_path(plan.source), plan.who, device)
        except HarnessError as e:
            _log.warning("cannot continue from %s (%s); the trial starts from D step 0", plan.source, e)
    if st is not None:
        body = resume.restore(st, nets, ema, stream, device)
        state, acc, spent = dict(body["variant_state"]), dict(body["acc"]), float(body["seconds"])
        result.value, result.best_step = body["result"]["value"], body["result"]["best_step"]
        result.evaluations = list(body["result"]["evaluations"])
        resume.carry_over(plan.source, tdir, st.step)
        board.replay(records.read_jsonl(log))  # the carried-over curve into this trial's TensorBoard run
        records.append_jsonl(log, {"kind": "resumed", "step": st.step, "from": str(plan.source), "seconds": spent})
        first, result.steps = st.step + 1, st.step
        result.resumed = {"from": str(plan.source), "step": st.step}
        if on_progress is not None:
            on_progress(st.step)
        if on_eval is not None:  # the pruner sees the evaluations the continued trial had reported
            for ev in result.evaluations:
                on_eval(ev["step"], ev[objective])
    t0 -= spent
    interrupt = resume.DeferredInterrupt()

    def save_state(step: int) -> None:
        if plan is not None:
            resume.save(tdir, step, plan.who, nets, ema, state, acc, stream, result, time.perf_counter() - t0)

    def step_and_record(step: int) -> bool:
        """One training step and, where due, its log record and evaluation; True if it saved the state."""
        nonlocal state, images
        with speed.autocast(cfg.train, device), speed.numerics(cfg.train):
            state, terms = train_step(variant, nets, hp, state, step, speed.batch(stream.next(), cfg.train), z_batch)
        if ema is not None and updates_g(step, hp):
            ema.update(nets.G)
        acc.update(terms)
        result.steps = step

        if step % cfg.train.log_every == 0 or step == cfg.train.steps:
            logged_state = {k: v for k, v in state.items() if isinstance(v, (int, float, torch.Tensor))}  # BEGAN's k, M
            values = _finite_or_raise({**acc, **logged_state}, step)
            records.append_jsonl(log, {"kind": "train", "step": step, **values})
            board.train(step, values)
            if on_progress is not None:
                on_progress(step)

        if not (step % cfg.train.checkpoint_every == 0 or step == cfg.train.steps):
            return False
        metrics, images = evaluate(G if ema is None else ema.module, cfg, ctx, z_eval)
        records.append_jsonl(log, {"kind": "eval", "step": step, "seconds": time.perf_counter() - t0, **metrics,
                                   "extractors": provenance(ctx, cfg.eval.metrics)})
        board.checkpoint(step, metrics, images, data.test)
        if images.ndim == 2 and images.shape[1] == 2:  # 2-D data: the density for the report's dynamics strip
            records.atomic_write_bytes(records.density_path(tdir, step), preview.density_npz(images, data.test))
        if cfg.train.keep_checkpoints:
            _save_weights(G, records.checkpoint_path(tdir, step))
            if ema is not None:
                _save_weights(ema.module, records.ema_checkpoint_path(tdir, step))
        result.evaluations.append({"step": step, **metrics})
        value = metrics[objective]
        if not math.isfinite(value):
            raise Diverged(f"non-finite {objective} at D step {step}")
        if value < result.value:
            result.value, result.best_step = value, step
        save_state(step)  # before the pruner may end the trial
        if on_eval is not None:
            on_eval(step, value)
        return plan is not None

    try:
        with interrupt.installed() if plan is not None else contextlib.nullcontext():
            for step in range(first, cfg.train.steps + 1):
                saved = step_and_record(step)
                if interrupt.pending:  # Ctrl-C / SIGTERM during this step: save, then stop (the runner re-queues)
                    if not saved:
                        save_state(step)
                    raise KeyboardInterrupt
    except Diverged as e:
        result.outcome, result.reason = "diverged", str(e)
        records.append_jsonl(log, {"kind": "diverged", "step": result.steps, "reason": str(e)})
    finally:
        result.seconds = time.perf_counter() - t0
        result.extractors = extractor_provenance(ctx)
        board.close()
    if images is None and st is not None and result.evaluations:
        # continued at the last step (stopped after its evaluation): the grid of the final G, as the straight run drew it
        with full_precision():
            images = generate(G if ema is None else ema.module, z_eval, cfg.eval.batch_size, cfg.eval.generator_mode)
    if images is not None and torch.isfinite(images).all():
        records.atomic_write_bytes(records.sample_grid_path(tdir), preview.samples_png(images, data.test))
    return result


def _save_weights(net: torch.nn.Module, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    records.atomic_write_bytes(path, buf.getvalue())
