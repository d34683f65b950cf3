"""Will a study's networks and batches fit in this machine's memory? Checked before anything is written.

A width or a batch can pass its type and range checks and still be unable to run here: G and D at
width 1000 hold trillions of weights. `bench study` and `bench worker` refuse such a study in one
line (exit 2) with the number that does not fit, before the storage opens, instead of failing
every trial on an out-of-memory error (issue 14, point 8).

The estimate is a lower bound, so it never refuses a study that could run: G and D are built on
PyTorch's meta device (shapes only, no memory). From the first step on, every parameter holds its
weight, its gradient (zero_grad sets them to None only at the start of the next step of its
network) and Adam's two moments (every variant trains G and D with Adam; train.py): 4 x 4 bytes.
A G step keeps, for backward, the output of every module with parameters (linear, convolution,
normalization) of G(z) and of D(G(z)) on one batch (2 bytes an element under bf16 autocast, else
4). Evaluation generates `[eval] batch_size` samples at a time without gradients: the largest single
output of G at that batch. The D step's two batches, penalties, unrolled copies and the
allocator's slack come on top (and the activations too, should a network use an operation PyTorch
cannot run on the meta device). It is compared with the device's total memory (a GPU's, or this
machine's RAM or its cgroup's limit): other processes may use some of it, but none can add to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from bench import registries
from bench.config import StudyConfig
from bench.errors import ConfigError
from bench.gan.architectures import ARCHITECTURES
from bench.gan.variants import VARIANTS

GIB = 2**30


@dataclass(frozen=True)
class Need:
    variant: str
    weights: int  # bytes of G's and D's weights, gradients and Adam moments
    train: int  # bytes of one G step's kept activations at [train] batch_size
    eval: int  # bytes of G's largest output at [eval] batch_size

    @property
    def total(self) -> int:
        return self.weights + max(self.train, self.eval)


def _outputs(module: torch.nn.Module) -> tuple[list[int], list[torch.utils.hooks.RemovableHandle]]:
    """Element counts of the outputs of every module that holds its own parameters, as they run."""
    sizes: list[int] = []

    def hook(m, args, out):
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                sizes.append(t.numel())

    # A parametrization (spectral norm) computes a weight, not an activation: its modules are left out.
    weights = {id(p) for m in module.modules() if hasattr(m, "parametrizations") for p in m.parametrizations.modules()}
    handles = [m.register_forward_hook(hook) for m in module.modules()
               if id(m) not in weights and any(True for _ in m.parameters(recurse=False))]
    return sizes, handles


def need(cfg: StudyConfig, variant: str) -> Need:
    """The lower-bound memory of one trial of `variant` (module docstring), from shapes alone."""
    v, arch = VARIANTS[variant], ARCHITECTURES[cfg.model.architecture]
    shape = tuple(registries.dataset_shape(cfg.data.dataset))
    with torch.device("meta"):
        G = v.build_g(arch, cfg.model.z_dim, shape, cfg.model.width)
        D = v.build_d(arch, shape, cfg.model.width, cfg.model.z_dim, v.defaults_in(cfg.study.space, cfg.study.fixed))
        params = sum(p.numel() for p in G.parameters()) + sum(p.numel() for p in D.parameters())
        g_sizes, handles = _outputs(G)
        d_sizes, handles2 = _outputs(D)
        try:
            fake = G(torch.empty(cfg.train.batch_size, cfg.model.z_dim))  # (B, z) -> (B, *shape)
            D(fake)  # a variant without a D (IMLE) has variants.NoD, which runs on any batch too
            train = sum(g_sizes) + sum(d_sizes)
            g_sizes.clear()
            for h in handles2:
                h.remove()
            with torch.no_grad():
                G(torch.empty(cfg.eval.batch_size, cfg.model.z_dim))
            largest = max(g_sizes, default=0)
        except NotImplementedError:  # an operation with no meta kernel: the weights alone still bound the trial
            train = largest = 0
        finally:
            for h in handles + handles2:
                h.remove()
    act_bytes = 2 if cfg.train.precision == "bf16" else 4
    return Need(variant, 4 * 4 * params, act_bytes * train, 4 * largest)


def available(device: torch.device) -> tuple[int, str]:
    """(bytes, words) of the memory a trial on `device` can have at most; (0, "") when unknown."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return int(props.total_memory), f"{device} ({props.name})"
    if device.type != "cpu":
        return 0, ""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system that says
        return 0, ""
    limit = Path("/sys/fs/cgroup/memory.max")  # a container's limit (cgroup v2), when it has one below the RAM
    try:
        text = limit.read_text().strip()
    except OSError:
        text = "max"
    if text.isdigit() and int(text) < total:
        return int(text), "this machine's memory limit (cgroup)"
    return int(total), "this machine's RAM"


def check(cfg: StudyConfig, variants: list[str], device: torch.device, have: tuple[int, str] | None = None) -> None:
    """Refuse (ConfigError, exit 2) when a variant's trial cannot fit on `device`; `have` overrides
    the device's memory (bytes, words), for tests."""
    limit, where = have if have is not None else available(device)
    if not limit:
        return
    # Variants that build the same G and D (loss and penalty aside) need the same: measure one of each.
    kinds = {}
    for v in variants:
        spec = VARIANTS[v]
        kinds.setdefault((spec.g_activation, spec.d_role, spec.d_options, spec.defaults_in(cfg.study.space, cfg.study.fixed).get("d_batchnorm")), v)
    src = cfg.source or cfg.name
    try:
        worst = max((need(cfg, v) for v in kinds.values()), key=lambda n: n.total)
    except ConfigError as e:  # a variant this architecture cannot build (began on mlp): said before anything runs
        raise ConfigError(f"{src}: {e}") from None
    if worst.total <= limit:
        return
    if worst.eval > worst.train:
        what = f"[eval] batch_size = {cfg.eval.batch_size}: G's largest output {worst.eval / GIB:,.1f} GiB"
    else:
        what = f"[train] batch_size = {cfg.train.batch_size}: one G step's activations {worst.train / GIB:,.1f} GiB"
    raise ConfigError(
        f"{src}: [model] width = {cfg.model.width:g} with {what}, plus {worst.weights / GIB:,.1f} GiB of weights, gradients and Adam moments "
        f"({worst.variant}), needs at least {worst.total / GIB:,.1f} GiB, but {where} has {limit / GIB:,.1f} GiB; "
        "expected a smaller [model] width or batch_size")
