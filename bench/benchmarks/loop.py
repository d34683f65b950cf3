"""Training-loop benchmarks: (a) harness overhead, (b) steps/s per architecture, and the speed keys.

`harness_overhead` (a) runs `train.run_trial` (the loop every study uses: the variant recipe, the
device-resident BatchStream, loss terms accumulated on the device and read back every
`log_every` steps into the append-only log, a checkpoint and a sample grid at the end) and, side
by side in the same process, `bare_loop` below: the same InfoGAN networks (models.ARCHITECTURES),
the same digits5k images on the device, the same batch, Adam implementation, loss and number of
steps, written as plain PyTorch with no harness code at all. Evaluation (FID) is timed separately
and left out of the harness side: it is a metric's cost, benchmarked by the FID-path benchmark,
not loop overhead. The quick study's setting is measured: ns_gan at its paper default (lr 5e-5,
beta1 0, one D step per G step, BN in D), width 0.25, batch 64.

`train_throughput` (b) times the harness's own step (`Stepper`: build_nets, speed.prepare,
train_step under speed.autocast, as run_trial runs it) for every registered architecture at the
paper's width 1.0 and batch 64, on random data of the first registered dataset shape it accepts.
`loop_options` puts the Adam implementations and the `[train] precision` / `channels_last` keys
side by side on infogan; `loop_compile` does the same for `[train] compile` and reports the
one-off compilation time. On GPUs the same functions run from `python -m bench.benchmarks.gpu`.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench import data as data_mod
from bench.benchmarks import benchmark, timing
from bench.benchmarks.timing import median, ratio, side_by_side
from bench.config import load_study
from bench.data import stream
from bench.gan.architectures import ARCHITECTURES
from bench.gan.variants import VARIANTS
from bench.trial import speed, train


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BareLoop:
    """Non-saturating GAN steps written by hand: set up in the constructor, `run(n)` times n steps.

    One step: D on a real batch and on G(z) (no gradient into G), D's Adam step; then G's loss
    -log sigmoid(D(G(z))) on the same z, G's Adam step (gradients into G's weights only). Adam is
    `torch.optim.Adam` with its own default implementation (`adam`: "fused"/"foreach" to pick one).
    Real batches are slices of seeded permutations of the device-resident images. Nothing is read
    back to the host.
    """

    def __init__(self, images: torch.Tensor, architecture: str, width: float, z_dim: int, batch: int,
                 lr: float, beta1: float, device: torch.device, seed: int = 0, adam: str | None = None):
        torch.manual_seed(seed)
        shape = tuple(images.shape[1:])
        arch = ARCHITECTURES[architecture]
        self.G = arch.generator(z_dim, shape, width).to(device)
        self.D = arch.discriminator(shape, width, True).to(device)
        kw = {adam: True} if adam else {}
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=lr, betas=(beta1, 0.999), **kw)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=lr, betas=(beta1, 0.999), **kw)
        self.x, self.batch, self.z_dim, self.device = images.to(device), batch, z_dim, device
        self.order = torch.Generator().manual_seed(seed)
        self.perm, self.pos = torch.randperm(len(self.x), generator=self.order).to(device), 0

    def run(self, steps: int) -> float:
        G, D, opt_g, opt_d, batch = self.G, self.D, self.opt_g, self.opt_d, self.batch
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            if self.pos + batch > len(self.perm):
                self.perm, self.pos = torch.randperm(len(self.x), generator=self.order).to(self.device), 0
            real = self.x[self.perm[self.pos : self.pos + batch]]
            self.pos += batch
            z = torch.rand(batch, self.z_dim, device=self.device) * 2 - 1
            with torch.no_grad():
                fake = G(z)
            loss_d = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            loss_g = F.softplus(-D(G(z))).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=list(G.parameters()))
            opt_g.step()
        sync(self.device)
        return time.perf_counter() - t0


def bare_loop(images: torch.Tensor, architecture: str, width: float, z_dim: int, batch: int, steps: int,
              lr: float, beta1: float, device: torch.device, seed: int = 0, adam: str | None = None) -> float:
    """Seconds for `steps` bare steps, setup included (as a trial includes its own)."""
    t0 = time.perf_counter()
    BareLoop(images, architecture, width, z_dim, batch, lr, beta1, device, seed, adam).run(steps)
    return time.perf_counter() - t0


def harness_trial(cfg, variant: str, device: torch.device) -> tuple[float, float]:
    """(seconds of run_trial without its evaluations, seconds spent evaluating) for one trial."""
    v = VARIANTS[variant]
    with timing.evaluation_seconds() as eval_s, tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        result = train.run_trial(cfg, v, dict(v.defaults), train.trial_seeds(0, 0), Path(d), device)
        wall = time.perf_counter() - t0
    if result.outcome != "complete" or result.steps != cfg.train.steps:
        raise RuntimeError(f"harness trial ended {result.outcome} after {result.steps} steps: {result.reason}")
    return wall - eval_s[0], eval_s[0]


@benchmark("harness_overhead")
def harness_overhead(quick: bool) -> dict[str, Any]:
    """(a) the harness's step / a bare PyTorch step, and run_trial (evaluation excluded) / the bare loop."""
    steps, repeats, width = (10, 1, 0.125) if quick else (50, 4, 0.25)
    step_n, step_repeats = (5, 1) if quick else (20, 9)
    device = torch.device("cpu")
    base = load_study("quick")
    cfg = base.replace("model", width=width).replace("train", steps=steps, checkpoint_every=steps, device="cpu")
    hp = VARIANTS["ns_gan"].defaults
    images = data_mod.load(cfg.data.dataset, data_mod.resolve_root(cfg.data.root)).train
    bare_args = (images, cfg.model.architecture, width, cfg.model.z_dim, cfg.train.batch_size)
    bare_kw = dict(lr=hp["learning_rate"], beta1=hp["beta1"], device=device, adam=speed.adam_impl(device))

    # The inner step, many short interleaved repeats: what multiplies over a study's millions of steps.
    ours = Stepper(cfg.model.architecture, width, cfg.train.batch_size, cfg.train, device, images=images)
    bare = BareLoop(*bare_args, **bare_kw)
    step_times = side_by_side({"harness": lambda: ours.run(step_n), "bare": lambda: bare.run(step_n)}, step_repeats,
                              warmup=0 if quick else 1)

    # The whole trial loop: setup, logging every log_every steps, checkpoint and sample grid at the end.
    eval_times: list[float] = []

    def harness() -> float:
        loop_s, ev = harness_trial(cfg, "ns_gan", device)
        eval_times.append(ev)
        return loop_s

    times = side_by_side({"harness": harness, "bare": lambda: bare_loop(*bare_args, steps, **bare_kw)}, repeats,
                         warmup=0 if quick else 1)
    return {
        "ratio": ratio(step_times, "harness", "bare"),
        "trial_ratio": ratio(times, "harness", "bare"),
        "harness_ms_per_step": round(1000 * median(step_times["harness"]) / step_n, 2),
        "bare_ms_per_step": round(1000 * median(step_times["bare"]) / step_n, 2),
        "goal": "<= 1.05",
        "detail": {"width": width, "batch": cfg.train.batch_size, "adam": speed.adam_impl(device),
                   "variant": "ns_gan (paper default)", "log_every": cfg.train.log_every,
                   "ratio": f"train_step / bare step, {step_repeats} interleaved repeats of {step_n} steps",
                   "trial_ratio": f"run_trial without evaluation / bare loop with setup, {repeats} repeats of {steps} steps",
                   "eval_s_excluded": round(median(eval_times), 3), "step_seconds": step_times, "trial_seconds": times},
        "command": "python -m bench.benchmarks harness_overhead",
    }


# --- (b) training steps/s per architecture, and the speed keys side by side -------------------------


def sample_shape(architecture: str) -> tuple[int, ...]:
    """The sample shape of the first registered dataset the architecture accepts (MNIST's for infogan)."""
    arch = ARCHITECTURES[architecture]
    for spec in data_mod.DATASETS.values():
        if arch.accepts(spec.shape) is None:
            return spec.shape
    raise ValueError(f"no registered dataset fits architecture {architecture!r}")


class Stepper:
    """The harness's own training step (`train.build_nets`, `speed.prepare`, `train.train_step` under
    `speed.autocast`), as run_trial runs it, on random device-resident data of the right shape."""

    def __init__(self, architecture: str, width: float, batch: int, train_cfg: Any, device: torch.device,
                 variant: str = "ns_gan", z_dim: int = 64, adam: str | None = None, seed: int = 0,
                 images: torch.Tensor | None = None):
        torch.manual_seed(seed)
        self.variant, self.train_cfg, self.device, self.batch, self.z_dim = VARIANTS[variant], train_cfg, device, batch, z_dim
        self.hp = dict(self.variant.defaults)
        shape = sample_shape(architecture)
        self.nets = train.build_nets(self.variant, architecture, shape, width, z_dim, self.hp, device)
        speed.prepare(self.nets.G, train_cfg)
        speed.prepare(self.nets.D, train_cfg)
        if adam is not None:  # an explicit Adam implementation, to compare against the harness's choice
            betas = (float(self.hp["beta1"]), 0.999)
            kw = {"foreach": False} if adam == "loop" else {adam: True}
            self.nets.opt_g = torch.optim.Adam(self.nets.G.parameters(), lr=self.hp["learning_rate"], betas=betas, **kw)
            self.nets.opt_d = torch.optim.Adam(self.nets.D.parameters(), lr=self.hp["learning_rate"], betas=betas, **kw)
        images = torch.rand(batch * 8, *shape) if images is None else images
        self.stream = stream.BatchStream(images, batch, seed, device)
        self.state: dict[str, Any] = dict(self.variant.initial_state)
        self.step = 0

    def z(self) -> torch.Tensor:
        return self.variant.latent(torch.rand(self.batch, self.z_dim, device=self.device) * 2 - 1)

    def run(self, n: int) -> float:
        """Seconds for n training steps (the device synchronised at both ends)."""
        sync(self.device)
        t0 = time.perf_counter()
        for _ in range(n):
            self.step += 1
            with speed.autocast(self.train_cfg, self.device):
                self.state, _ = train.train_step(self.variant, self.nets, self.hp, self.state, self.step,
                                                 speed.batch(self.stream.next(), self.train_cfg), self.z)
        sync(self.device)
        return time.perf_counter() - t0


def steps_for(stepper: Stepper, seconds: float) -> int:
    """Steps that take about `seconds`, from one timed step after one warm-up step."""
    stepper.run(1)
    return max(1, int(seconds / max(stepper.run(1), 1e-4)))


def throughput(architectures: list[str], width: float, batch: int, train_cfg: Any, device: torch.device,
               repeats: int, seconds: float) -> dict[str, float]:
    """Training steps/s of each architecture (median of repeats of about `seconds` each)."""
    out = {}
    for name in architectures:
        s = Stepper(name, width, batch, train_cfg, device)
        n = steps_for(s, seconds)
        times = [s.run(n) for _ in range(repeats)]
        out[name] = round(n / median(times), 2)
    return out


def option_ratios(options: dict[str, tuple[dict[str, Any], str | None]], architecture: str, width: float, batch: int,
                  base_cfg: Any, device: torch.device, repeats: int, seconds: float, base: str) -> dict[str, Any]:
    """Steps/s of the same step under each setting, interleaved; each over the `base` setting."""
    steppers = {k: Stepper(architecture, width, batch, dataclasses.replace(base_cfg, **keys), device, adam=adam)
                for k, (keys, adam) in options.items()}
    n = steps_for(steppers[base], seconds)
    times = side_by_side({k: (lambda s=s: s.run(n)) for k, s in steppers.items()}, repeats)
    rate = {k: round(n / median(v), 3) for k, v in times.items()}
    return {"steps_per_s": rate, "ratio": {k: round(rate[k] / rate[base], 3) for k in rate}, "steps": n}


@benchmark("train_throughput")
def train_throughput(quick: bool) -> dict[str, Any]:
    """(b) training steps/s per architecture at the paper's width 1.0, batch 64, ns_gan default, fp32, on this CPU."""
    width, batch, repeats, seconds = (0.125, 16, 1, 0.2) if quick else (1.0, 64, 3, 2.0)
    cfg = load_study("quick").train
    rates = throughput(sorted(ARCHITECTURES), width, batch, cfg, torch.device("cpu"), repeats, seconds)
    return {
        **{f"{k}_steps_per_s": v for k, v in rates.items()},
        "detail": {"width": width, "batch": batch, "variant": "ns_gan (paper default)", "repeats": repeats,
                   "shapes": {k: list(sample_shape(k)) for k in rates}, "threads": torch.get_num_threads()},
        "command": "python -m bench.benchmarks train_throughput",
    }


# Each setting: (speed keys, Adam implementation or None for the harness's own choice).
CPU_OPTIONS: dict[str, tuple[dict[str, Any], str | None]] = {
    "harness": ({}, None),  # fp32, fused Adam: the default every study runs
    "adam_loop": ({}, "loop"),  # torch.optim.Adam's own default on a CPU (one parameter at a time)
    "adam_foreach": ({}, "foreach"),
    "bf16": ({"precision": "bf16"}, None),
    "channels_last": ({"channels_last": True}, None),
    "bf16_channels_last": ({"precision": "bf16", "channels_last": True}, None),
}


@benchmark("loop_options")
def loop_options(quick: bool) -> dict[str, Any]:
    """The speed keys and Adam implementations side by side: infogan width 1.0, batch 64, steps/s over the default."""
    width, batch, repeats, seconds = (0.125, 16, 1, 0.2) if quick else (1.0, 64, 3, 1.5)
    cfg = load_study("quick").train
    r = option_ratios(CPU_OPTIONS, "infogan", width, batch, cfg, torch.device("cpu"), repeats, seconds, base="harness")
    return {
        "ratio": r["ratio"]["bf16"],
        **{f"{k}_vs_default": v for k, v in r["ratio"].items() if k != "harness"},
        "detail": {"width": width, "batch": batch, "steps": r["steps"], "repeats": repeats, "steps_per_s": r["steps_per_s"],
                   "note": "ratio = bf16 steps/s over the default (fp32, fused Adam); torch.compile is measured by loop_compile"},
        "command": "python -m bench.benchmarks loop_options",
    }


@benchmark("loop_compile")
def loop_compile(quick: bool) -> dict[str, Any]:
    """[train] compile = true against eager, side by side: the quick study's infogan (width 0.25, batch 64)."""
    width, batch, repeats, seconds = (0.125, 16, 1, 0.2) if quick else (0.25, 64, 3, 2.0)
    device = torch.device("cpu")
    cfg = load_study("quick").train
    compiled = Stepper("infogan", width, batch, dataclasses.replace(cfg, compile=True), device)
    t0 = time.perf_counter()
    compiled.run(3)  # compilation happens here: G and D forward/backward, train and no-grad modes
    compile_s = time.perf_counter() - t0
    eager = Stepper("infogan", width, batch, cfg, device)
    n = steps_for(eager, seconds)
    times = side_by_side({"compiled": lambda: compiled.run(n), "eager": lambda: eager.run(n)}, repeats)
    return {
        "ratio": ratio(times, "eager", "compiled"),
        "compile_s": round(compile_s, 1),
        "detail": {"width": width, "batch": batch, "steps": n, "repeats": repeats, "seconds": times,
                   "note": "ratio = compiled steps/s over eager steps/s; compile_s = the first 3 steps, compilation included"},
        "command": "python -m bench.benchmarks loop_compile",
    }
