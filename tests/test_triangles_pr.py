"""Triangles precision/recall/F1 (Lucic et al. §5): the exact renderer against areas, the manifold
distance of the dataset's triangles (data_synthetic, compare_gan's generator) and of broken
samples, G inversion for a generator that can draw every triangle and one that has collapsed,
and the registered metric end to end."""

from __future__ import annotations

import math

import pytest
import torch

from bench.data import synthetic
from bench.data.base import Data
from bench.metrics import METRICS
from bench.metrics import triangles_pr as T
from bench.metrics.base import MetricContext


def triangle_vertices(n: int, seed: int) -> torch.Tensor:
    """(n, 3, 2) in [-1, 1]: convex triangles with every angle >= 20° and area >= 30 px² at scale 10."""
    g = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < n:
        v = torch.rand(3, 2, generator=g) * 2 - 1
        if T.angles_deg(v[None]).min() >= 20 and T.area(v[None] * 10) > 30:
            out.append(v)
    return torch.stack(out)


def to_pixels(v: torch.Tensor) -> torch.Tensor:
    return v * 10 + 14


def dataset_triangles(n: int, seed: int) -> torch.Tensor:
    """(n, 1, 28, 28) as the `triangles` dataset draws them: dark triangles on a light ground."""
    return torch.from_numpy(synthetic.generate_triangles(n, seed=seed) / 64.0).float().view(n, 1, 28, 28)


def drawing_generator(z: torch.Tensor) -> torch.Tensor:
    """A 'generator' with z_dim 6 that can draw every dataset triangle: z -> vertices -> soft rendering."""
    return 1 - T.soft_render(z.view(-1, 3, 2) * 11 + 14)


def collapsed_generator(z: torch.Tensor) -> torch.Tensor:
    v = triangle_vertices(1, 99).expand(len(z), 3, 2) + 0 * z.view(-1, 3, 2)
    return 1 - T.soft_render(to_pixels(v))


@pytest.fixture(scope="module")
def triangles() -> torch.Tensor:
    return dataset_triangles(200, 0)


def test_exact_render_covers_the_triangle_area():
    v = to_pixels(triangle_vertices(200, 0))
    drawn = T.render(v)
    assert drawn.shape == (200, 1, 28, 28) and 0 <= drawn.min() and drawn.max() <= 1
    assert torch.allclose(drawn.sum((1, 2, 3)), T.area(v), rtol=0, atol=0.5)  # 8x8 subsamples: error ~ perimeter / 64
    assert (T.render(v.flip(1)) - drawn).abs().max() <= 2 / 64  # vertex order does not matter (up to subsamples on an edge)


def test_manifold_distance_separates_triangles_from_broken_samples(triangles):
    real, ref = triangles[:40], triangles[100:]
    assert T.manifold_distance(real, ref, restarts=3, steps=100).max() < 0.02
    assert T.dark_on_light(ref)
    shifted = torch.roll(triangles[:20], shifts=1, dims=3)
    assert T.manifold_distance(shifted, ref, restarts=3, steps=100).max() < 0.02  # the fit follows a small shift
    off_centre = torch.roll(triangles[:20], shifts=(3, 3), dims=(2, 3))
    assert T.manifold_distance(off_centre, ref, restarts=3, steps=100).min() > 0.05  # the data are centred
    blank, noise = torch.ones(5, 1, 28, 28), torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert T.manifold_distance(blank, ref, 3, 100).min() > 0.1  # a blank is not a (degenerate) triangle
    assert T.manifold_distance(noise, ref, 3, 100).min() > 0.3
    half = triangles[:20].clone()
    half[..., 14:] = 1  # triangles cut in half
    assert (T.manifold_distance(half, ref, 3, 100) > 0.05).float().mean() > 0.5


def test_inverting_a_generator_that_draws_all_triangles_recalls_them(triangles):
    d_good = T.invert_distance(drawing_generator, triangles[:30], z_dim=6, restarts=3, steps=150, seed=0)
    d_bad = T.invert_distance(collapsed_generator, triangles[:30], z_dim=6, restarts=3, steps=150, seed=0)
    assert (d_good <= 0.05).float().mean() >= 0.9
    assert (d_bad <= 0.05).float().mean() <= 0.1


@pytest.mark.parametrize("name", [n for n, m in METRICS.items() if n.startswith("triangles_prf") and m.num_samples <= 100])
def test_triangles_metric_end_to_end(name, triangles):
    m = METRICS[name]
    data = Data("triangles", train=triangles[100:], test=triangles[: m.num_samples])
    ctx = MetricContext(data, torch.device("cpu"), batch_size=200, seed=0, z_dim=6)
    good_samples = dataset_triangles(m.num_samples, 1)  # other triangles of the dataset
    ctx.begin(drawing_generator)
    good = m.compute(ctx, good_samples)
    assert good["precision"] >= 0.9 and good["recall"] >= 0.8 and good["value"] == pytest.approx(T.f1(good["precision"], good["recall"]))
    assert not m.lower_is_better and m.needs_generator
    # Its distance twin (the lower-is-better objective) reuses the same computation.
    dist = METRICS[name.replace("_prf_", "_dist_")]
    assert dist.lower_is_better and dist.compute(ctx, good_samples)["value"] == pytest.approx(
        0.5 * (good["precision_distance"] + good["recall_distance"]))
    ctx.begin(collapsed_generator)
    with torch.no_grad():
        collapsed = m.compute(ctx, collapsed_generator(torch.zeros(m.num_samples, 6)))
    assert collapsed["recall"] <= 0.1 and collapsed["value"] < good["value"]
    ctx.begin(drawing_generator)
    nan = m.compute(ctx, torch.full_like(good_samples, math.nan))
    assert all(math.isnan(v) for v in nan.values())
