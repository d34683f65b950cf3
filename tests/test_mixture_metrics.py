"""2-D mixture metrics on hand-built point sets, the study-file checks that pair data, networks and
metrics, and a tiny ring8 study through the real CLI (scatter preview, data-order record)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from bench import config, records
from bench.data import load
from bench.data.synthetic import MIXTURES
from bench.errors import ConfigError
from bench.metrics import METRICS
from bench.metrics.base import MetricContext
from bench.metrics.mixtures import sliced_wasserstein

from .conftest import run_cli

MIX = list(MIXTURES)


def _at_modes(name: str, per_mode: list[int], offset: float = 0.0) -> torch.Tensor:
    """per_mode[k] points at mode k, each moved `offset` standard deviations along x."""
    m = MIXTURES[name]
    pts = [np.repeat(m.means[k : k + 1] + [offset * m.std, 0.0], n, axis=0) for k, n in enumerate(per_mode)]
    return torch.from_numpy(np.concatenate(pts)).float()


def _value(metric: str, points: torch.Tensor, tmp_path, dataset: str) -> float:
    ctx = MetricContext(load(dataset, tmp_path), torch.device("cpu"))
    return METRICS[metric].compute(ctx, points)["value"]


@pytest.mark.parametrize("name", MIX)
def test_every_mode_covered_and_all_high_quality(name, tmp_path):
    k = len(MIXTURES[name].centres)
    pts = _at_modes(name, [10_000 // k + (i < 10_000 % k) for i in range(k)], offset=2.9)
    assert len(pts) == 10_000
    assert _value(f"modes_{name}_10k", pts, tmp_path, name) == k
    assert _value(f"hq_fraction_{name}_10k", pts, tmp_path, name) == 1.0


@pytest.mark.parametrize("name", MIX)
def test_collapsed_generator_covers_few_modes(name, tmp_path):
    k = len(MIXTURES[name].centres)
    # 5,000 points 0.5 std from mode 0, 99 at mode 1 (under 1% of 10k: not covered), 100 at mode 2 (covered),
    # 4,801 at 3.1 std from mode 3 (not high quality)
    counts = [5000, 99, 100] + [0] * (k - 3)
    pts = torch.cat([_at_modes(name, counts, offset=0.5), _at_modes(name, [0, 0, 0, 4801] + [0] * (k - 4), offset=3.1)])
    assert _value(f"modes_{name}_10k", pts, tmp_path, name) == 2
    assert _value(f"hq_fraction_{name}_10k", pts, tmp_path, name) == pytest.approx(5199 / 10_000)


@pytest.mark.parametrize("name", MIX)
def test_sliced_wasserstein_of_a_shift_is_the_mean_projected_shift(name, tmp_path):
    test = load(name, tmp_path).test
    v = torch.tensor([0.3, -0.2])
    theta = torch.arange(128, dtype=torch.float64) * math.pi / 128
    expect = (v[0].double() * torch.cos(theta) + v[1].double() * torch.sin(theta)).abs().mean().item()
    assert _value(f"swd_{name}_10k_test", test + v, tmp_path, name) == pytest.approx(expect, rel=1e-5)
    assert _value(f"swd_{name}_10k_test", test.clone(), tmp_path, name) == 0.0
    assert sliced_wasserstein(test[:5], test[5:10].flip(0)) == sliced_wasserstein(test[:5], test[5:10])  # order-free


def test_sliced_wasserstein_is_bit_identical_to_the_torch_sort_form():
    """The numpy sort gives exactly the value of the first form (torch.sort along dim 0), so SWDs
    stored by earlier studies still audit bit for bit; ties and a generator collapsed to one point included."""
    gen = torch.Generator().manual_seed(3)
    theta = torch.arange(128, dtype=torch.float64) * (math.pi / 128)
    u = torch.stack([torch.cos(theta), torch.sin(theta)])
    for a, b in [(torch.randn(10_000, 2, generator=gen) * 2, torch.randn(10_000, 2, generator=gen).double()),
                 (torch.zeros(777, 2), torch.randn(777, 2, generator=gen).round()),
                 (torch.randn(3, 2, generator=gen), torch.randn(3, 2, generator=gen))]:
        first = (torch.sort(a.double() @ u, dim=0).values - torch.sort(b.double() @ u, dim=0).values).abs().mean()
        assert sliced_wasserstein(a, b) == float(first)


@pytest.mark.parametrize("name", MIX)
def test_the_swd_metric_sorts_the_test_points_once_per_context_with_the_same_values(name, tmp_path, monkeypatch):
    """One context scores every checkpoint of a trial: the test side's sorted projections are kept,
    and each checkpoint's value is still sliced_wasserstein's, bit for bit."""
    from bench.metrics import mixtures

    ctx = MetricContext(load(name, tmp_path), torch.device("cpu"))
    test = ctx.data.test[:10_000]
    gen = torch.Generator().manual_seed(5)
    checkpoints = [test + torch.randn(2, generator=gen) * 0.1, torch.randn(10_000, 2, generator=gen) * 3, test.clone()]
    sorts = []
    real = mixtures._sorted_projections
    monkeypatch.setattr(mixtures, "_sorted_projections", lambda x, s: sorts.append(len(x)) or real(x, s))
    got = [METRICS[f"swd_{name}_10k_test"].compute(ctx, pts)["value"] for pts in checkpoints]
    assert len(sorts) == len(checkpoints) + 1  # each checkpoint's points, the test points once
    monkeypatch.setattr(mixtures, "_sorted_projections", real)
    assert got == [sliced_wasserstein(pts, test) for pts in checkpoints] and got[-1] == 0.0


@pytest.mark.parametrize("metric", [m for m in METRICS if any(x in m for x in MIX)])
def test_mixture_metrics_give_nan_for_non_finite_samples_and_name_their_data(metric, tmp_path):
    name = next(x for x in MIX if x in metric)
    assert METRICS[metric].supports(name) and not METRICS[metric].supports("digits5k")
    assert METRICS[metric].lower_is_better == metric.startswith("swd_")
    pts = load(name, tmp_path).test.clone()
    pts[7, 1] = float("nan")
    assert math.isnan(_value(metric, pts, tmp_path, name))


def _study(**over) -> dict:
    raw = {"data": {"dataset": "ring8"}, "model": {"architecture": "mlp"}, "eval": {"metrics": ["swd_ring8_10k_test"]}}
    for key, value in over.items():
        section, field = key.split("__")
        raw.setdefault(section, {})[field] = value
    return raw


def test_study_file_pairs_data_architecture_and_metrics():
    assert config.parse_study(_study(), "s.toml", "s").data.dataset == "ring8"
    with pytest.raises(ConfigError, match=r"s.toml: \[model\] architecture = 'infogan' takes images .*'mlp'"):
        config.parse_study(_study(model__architecture="infogan"), "s.toml", "s")
    with pytest.raises(ConfigError, match=r"\[eval\] metrics: 'fid_lenet_digits5k_1k_test' does not apply to \[data\] dataset = 'ring8'"):
        config.parse_study(_study(eval__metrics=["fid_lenet_digits5k_1k_test"]), "s.toml", "s")
    with pytest.raises(ConfigError, match=r"objective.*'modes_ring8_10k' is higher-is-better.*'swd_ring8_10k_test'"):
        config.parse_study(_study(eval__metrics=["modes_ring8_10k", "swd_ring8_10k_test"]), "s.toml", "s")
    with pytest.raises(ConfigError, match=r"\[data\] workers = -1"):
        config.parse_study(_study(data__workers=-1), "s.toml", "s")


def test_tiny_ring8_study_through_the_cli(env, tiny_study, tmp_path):
    path = tiny_study(name="ring", variants='["ns_gan"]', dataset="ring8", architecture="mlp", width=0.25, steps=10,
                      checkpoint_every=10, metrics='["swd_ring8_10k_test", "modes_ring8_10k", "hq_fraction_ring8_10k"]')
    r = run_cli("study", path, "--variant", "ns_gan", env=env)
    assert r.returncode == 0, r.stderr
    assert "swd_ring8_10k_test_min" in r.stdout
    tdir = tmp_path / "results" / "ring" / "ns_gan" / "trial-0000"
    log = list(records.read_jsonl(tdir / "metrics.jsonl"))
    (ev,) = [x for x in log if x["kind"] == "eval"]
    assert ev["swd_ring8_10k_test"] > 0 and 0 <= ev["modes_ring8_10k"] <= 8 and 0 <= ev["hq_fraction_ring8_10k"] <= 1
    (rec,) = [x for x in log if x["kind"] == "data"]
    seeds = json.loads((tdir / "config.json").read_text())["seeds"]
    assert rec["dataset"] == "ring8" and rec["path"] == "device-resident" and rec["order_seed"] == seeds["data_order"]
    assert (tdir / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a scatter plot of the points
