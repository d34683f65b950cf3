"""The loop's speed settings: no host read-back inside a training step (every variant), the study
keys precision / compile / channels_last validated, applied and recorded, fused Adam chosen."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import bench
from bench.config import load_study, parse_study
from bench.errors import ConfigError
from bench.gan.variants import VARIANTS
from bench.trial import speed, train

BENCH_DIR = str(Path(bench.__file__).resolve().parent)
READBACKS = ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__")


@pytest.fixture
def readbacks(monkeypatch) -> list[str]:
    """Every host read-back of a tensor made from the harness's own code ("file:line method")."""
    seen: list[str] = []
    for name in READBACKS:
        orig = getattr(torch.Tensor, name)

        def spy(self, *a, __orig=orig, __name=name, **k):
            caller = sys._getframe(1)
            path = str(Path(caller.f_code.co_filename).resolve())
            if path.startswith(BENCH_DIR) and "benchmarks" not in path:
                seen.append(f"{Path(path).name}:{caller.f_lineno} {__name}")
            return __orig(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)
    return seen


def tiny_nets(variant, train_cfg, shape=(1, 28, 28), z_dim=8):
    hp = dict(variant.defaults)
    nets = train.build_nets(variant, "infogan", shape, 0.125, z_dim, hp, torch.device("cpu"))
    speed.prepare(nets.G, train_cfg)
    speed.prepare(nets.D, train_cfg)
    return nets, hp


def steps(variant, nets, hp, train_cfg, n: int, batch: int = 8, z_dim: int = 8) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    state, terms = dict(variant.initial_state), {}
    x = speed.batch(torch.rand(batch, 1, 28, 28), train_cfg)

    def z_batch() -> torch.Tensor:
        return variant.latent(torch.rand(batch, z_dim) * 2 - 1)

    for step in range(1, n + 1):
        with speed.autocast(train_cfg, torch.device("cpu")):
            state, t = train.train_step(variant, nets, hp, state, step, x, z_batch)
        terms.update(t)
    return terms


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_train_step_reads_nothing_back_to_the_host(name, readbacks):
    """No .item()/.cpu()/float(tensor)/if tensor: in a step, hooks included: the GPU never waits on Python."""
    variant = VARIANTS[name]
    cfg = load_study("quick").train
    nets, hp = tiny_nets(variant, cfg)
    n = max(2, int(hp["disc_iters"]))  # at least one G step
    terms = steps(variant, nets, hp, cfg, n)
    assert any(k.startswith("g_") for k in terms), "the G step ran"
    assert readbacks == [], f"{name}: host read-backs inside train_step: {readbacks}"


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_bf16_channels_last_step_keeps_fp32_state(name):
    """Under precision = bf16 and channels_last, every variant steps with fp32 weights, gradients and loss terms."""
    variant = VARIANTS[name]
    cfg = load_study("quick").train
    cfg = type(cfg)(**{**cfg.__dict__, "precision": "bf16", "channels_last": True})
    nets, hp = tiny_nets(variant, cfg)
    terms = steps(variant, nets, hp, cfg, max(2, int(hp["disc_iters"])))
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in terms.values()), terms
    for net in (nets.G, nets.D):
        assert all(p.dtype == torch.float32 for p in net.parameters())
        convs = [p for p in net.parameters() if p.dim() == 4]
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)


def test_fused_adam_where_the_device_has_it():
    assert speed.adam_impl(torch.device("cpu")) in ("fused", "foreach")
    opt = speed.adam([torch.nn.Parameter(torch.zeros(3))], 1e-3, (0.5, 0.999), torch.device("cpu"))
    assert opt.defaults[speed.adam_impl(torch.device("cpu"))] is True
    nets, _ = tiny_nets(VARIANTS["ns_gan"], load_study("quick").train)
    assert nets.opt_d.defaults[speed.adam_impl(torch.device("cpu"))] is True


def test_compile_is_applied_in_place_and_keeps_parameter_names():
    cfg = load_study("quick").train
    cfg = type(cfg)(**{**cfg.__dict__, "compile": True})
    nets, _ = tiny_nets(VARIANTS["ns_gan"], load_study("quick").train)
    names = list(nets.G.state_dict())
    speed.prepare(nets.G, cfg)
    assert nets.G._compiled_call_impl is not None and list(nets.G.state_dict()) == names


def test_speed_keys_default_off_and_are_validated():
    cfg = parse_study({"study": {"trials": 1}}, "x.toml", "x")  # a file must set something (issue 14, point 8)
    assert (cfg.train.precision, cfg.train.compile, cfg.train.channels_last) == ("fp32", False, False)
    assert speed.settings(cfg.train, torch.device("cpu"))["precision"] == "fp32"
    with pytest.raises(ConfigError, match=r"x.toml: \[train\] precision = 'fp16' is not allowed; expected one of 'fp32', 'bf16'"):
        parse_study({"train": {"precision": "fp16"}}, "x.toml", "x")
    with pytest.raises(ConfigError, match=r"\[train\] compile = 'yes' has the wrong type"):
        parse_study({"train": {"compile": "yes"}}, "x.toml", "x")
