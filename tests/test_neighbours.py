"""Density and coverage (Naeem et al. 2020) and the memorization share: hand-computed values on a few
points, agreement with the authors' `prdc` package, and answers that do not depend on the block or
feature-extraction batch size."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench import metrics
from bench.data.base import Data
from bench.metrics import base, extractors, neighbours
from bench.metrics.extractors import EXTRACTORS, ExtractorSpec

REAL = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
GEN = torch.tensor([[0.5], [2.5], [10.0]])


def test_density_and_coverage_by_hand():
    # k = 1: radii (nearest other real point) 1, 1, 2, 3; balls (-1,1) (0,2) (1,5) (3,9).
    # 0.5 lies in 2 balls, 2.5 in 1, 10 in none: density 3/(1*3); balls 0, 1, 3 hold a sample: coverage 3/4.
    assert neighbours.density_coverage(REAL, GEN, k=1) == {"density": 1.0, "coverage": 0.75}
    # k = 2: radii 3, 2, 3, 5; balls (-3,3) (-1,3) (0,6) (1,11) hold 2 samples each: density 8/(2*3), coverage 1.
    out = neighbours.density_coverage(REAL, GEN, k=2)
    assert out["density"] == pytest.approx(4 / 3) and out["coverage"] == 1.0
    # a sample on a ball's edge is outside (strict <, as the authors' code): 2 is at distance 1 from 1, radius 1
    assert neighbours.density_coverage(REAL, torch.tensor([[2.0]]), k=1)["density"] == 1.0  # only in (1,5)


def test_kth_neighbour_excludes_the_point_itself_and_needs_enough_points():
    assert neighbours.kth_neighbour_distance(REAL, 1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert neighbours.kth_neighbour_distance(REAL, 3).tolist() == [6.0, 5.0, 3.0, 6.0]
    with pytest.raises(ValueError, match="4 points have no 4-th nearest other point"):
        neighbours.kth_neighbour_distance(REAL, 4)


def test_density_and_coverage_equal_the_authors_prdc_package():
    prdc = pytest.importorskip("prdc", reason="the reference implementation (pip install prdc)")
    g = torch.Generator().manual_seed(0)
    real = torch.randn(300, 16, generator=g)
    gen = 0.8 * torch.randn(250, 16, generator=g) + 0.3
    theirs = prdc.compute_prdc(real.numpy(), gen.numpy(), nearest_k=5)
    ours = neighbours.density_coverage(real, gen, k=5)
    assert ours["density"] == pytest.approx(theirs["density"], abs=1e-12)
    assert ours["coverage"] == pytest.approx(theirs["coverage"], abs=1e-12)
    assert 0.3 < ours["coverage"] < 1 and ours["density"] > 0.3  # a case that tests something


def test_answers_do_not_depend_on_the_block_size():
    g = torch.Generator().manual_seed(1)
    real, gen = torch.randn(203, 8, generator=g), torch.randn(157, 8, generator=g)
    ref = neighbours.density_coverage(real, gen, k=5)
    mem = neighbours.memorization(gen, real)
    for block in (1, 7, 64):
        assert neighbours.density_coverage(real, gen, k=5, block=block) == ref
        other = neighbours.memorization(gen, real, block=block)
        assert other["share"] == mem["share"] and torch.equal(other["index"], mem["index"])


def test_memorization_by_hand_and_on_copying_and_non_copying_generators():
    # training 0, 1, 3, 6 (nearest-other gaps 1, 1, 2, 3): 0.2 -> 0 at 0.2 < 1; 2.2 -> 3 at 0.8 < 2;
    # 4.6 -> 6 at 1.4 < 3; 20 -> 6 at 14 > 3. Three copies in four.
    out = neighbours.memorization(torch.tensor([[0.2], [2.2], [4.6], [20.0]]), REAL)
    assert out["share"] == 0.75 and out["index"].tolist() == [0, 2, 3, 3]
    assert out["copied"].tolist() == [True, True, True, False]
    g = torch.Generator().manual_seed(2)
    train, held_out = torch.randn(500, 32, generator=g), torch.randn(300, 32, generator=g)
    copier = train[torch.randint(0, 500, (300,), generator=g)] + 1e-4 * torch.randn(300, 32, generator=g)
    assert neighbours.memorization(copier, train)["share"] == 1.0
    # a generator of fresh draws from the same law: mutual nearest neighbours about half the time, far from 1
    fresh = neighbours.memorization(held_out, train)["share"]
    assert 0.2 < fresh < 0.8
    assert neighbours.memorization(10 + torch.randn(300, 32, generator=g), train)["share"] == 0.0  # far away: none


@pytest.fixture
def linear_extractor(monkeypatch):
    """A registered extractor with random linear features (the metric path without training LeNet)."""
    w = torch.randn(16, 6, generator=torch.Generator().manual_seed(3))

    def build(device, weights=""):
        return extractors.Extractor("lin", "0" * 64, "uint8 /255", ("f",), run=lambda x: {"f": (x.flatten(1).float() / 255) @ w})

    monkeypatch.setitem(EXTRACTORS, "lin", ExtractorSpec("lin", "test features", build))
    return "lin"


def test_the_metric_uses_the_test_split_features_and_not_the_batch_size(env, linear_extractor):
    g = torch.Generator().manual_seed(4)
    data = Data("nn", torch.rand(64, 1, 4, 4, generator=g), torch.rand(64, 1, 4, 4, generator=g))
    gen = torch.rand(64, 1, 4, 4, generator=g)
    fn = neighbours.dc(linear_extractor, 64)
    outs = []
    for bs in (64, 5):
        ctx = base.MetricContext(data, torch.device("cpu"), batch_size=bs)
        ctx.begin()
        outs.append(fn(ctx, gen))
    assert outs[0] == outs[1]
    ext = EXTRACTORS["lin"].build(torch.device("cpu"))
    feats = lambda x: ext.run(extractors.to_uint8(x))["f"]  # noqa: E731
    hand = neighbours.density_coverage(feats(data.test), feats(gen), k=5)
    assert outs[0] == {"value": hand["coverage"], **hand}
    assert math.isnan(fn(ctx, torch.full_like(gen, math.nan))["density"])


@pytest.mark.parametrize("name", [n for n in metrics.METRICS if n.startswith("dc_")])
def test_registered_dc_metrics_are_higher_is_better_k5_in_a_registered_space(name):
    m = metrics.METRICS[name]
    assert not m.lower_is_better and m.extractor in EXTRACTORS and "k=5" in m.doc
    assert np.isfinite(m.num_samples)
