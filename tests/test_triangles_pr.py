"""Triangles precision/recall/F1 (Lucic et al. §5) on triangles generated here: the exact renderer
against areas, the manifold distance of real and broken samples, G inversion for a generator that
can draw every triangle and one that has collapsed, and the registered metric end to end."""

from __future__ import annotations

import math

import pytest
import torch

from bench import triangles_pr as T
from bench.data import Data
from bench.metrics import METRICS, MetricContext


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


def drawing_generator(z: torch.Tensor) -> torch.Tensor:
    """A 'generator' with z_dim 6 that can draw every fixture triangle: z -> vertices -> soft rendering."""
    return T.soft_render(to_pixels(z.view(-1, 3, 2)))


def collapsed_generator(z: torch.Tensor) -> torch.Tensor:
    v = triangle_vertices(1, 99).expand(len(z), 3, 2) + 0 * z.view(-1, 3, 2)
    return T.soft_render(to_pixels(v))


@pytest.fixture(scope="module")
def triangles() -> torch.Tensor:
    return T.render(to_pixels(triangle_vertices(200, 0)))  # (200, 1, 28, 28)


def test_exact_render_covers_the_triangle_area(triangles):
    v = to_pixels(triangle_vertices(200, 0))
    assert triangles.shape == (200, 1, 28, 28) and 0 <= triangles.min() and triangles.max() <= 1
    assert torch.allclose(triangles.sum((1, 2, 3)), T.area(v), rtol=0, atol=0.5)  # 8x8 subsamples: error ~ perimeter / 64
    assert (T.render(v.flip(1)) - triangles).abs().max() <= 2 / 64  # vertex order does not matter (up to subsamples on an edge)


def test_manifold_distance_separates_triangles_from_broken_samples(triangles):
    real, ref = triangles[:40], triangles[100:]
    assert T.manifold_distance(real, ref, restarts=3, steps=100).max() < 0.02
    shifted = T.render(to_pixels(triangle_vertices(200, 0))[:20] + torch.tensor([0.3, -0.2]))
    assert T.manifold_distance(shifted, ref, restarts=3, steps=100).max() < 0.02  # the fit follows a shift
    blank, noise = torch.zeros(5, 1, 28, 28), torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert T.manifold_distance(blank, ref, 3, 100).min() > 0.1  # a blank is not a (degenerate) triangle
    assert T.manifold_distance(noise, ref, 3, 100).min() > 0.3
    half = triangles[:20].clone()
    half[..., 14:] = 0  # triangles cut in half
    assert (T.manifold_distance(half, ref, 3, 100) > 0.05).float().mean() > 0.5


def test_inverting_a_generator_that_draws_all_triangles_recalls_them(triangles):
    d_good = T.invert_distance(drawing_generator, triangles[:30], z_dim=6, restarts=3, steps=150, seed=0)
    d_bad = T.invert_distance(collapsed_generator, triangles[:30], z_dim=6, restarts=3, steps=150, seed=0)
    assert (d_good <= 0.05).float().mean() >= 0.9
    assert (d_bad <= 0.05).float().mean() <= 0.1


@pytest.mark.parametrize("name", [n for n, m in METRICS.items() if m.supports("triangles") and m.num_samples <= 100])
def test_triangles_metric_end_to_end(name, triangles):
    m = METRICS[name]
    data = Data("triangles", train=triangles[100:], test=triangles[: m.num_samples])
    ctx = MetricContext(data, torch.device("cpu"), batch_size=200, seed=0, z_dim=6)
    z = triangle_vertices(m.num_samples, 1).view(-1, 6)
    good_samples = T.render(to_pixels(z.view(-1, 3, 2)))  # other triangles of the same family
    ctx.begin(drawing_generator)
    good = m.compute(ctx, good_samples)
    assert good["precision"] >= 0.9 and good["recall"] >= 0.8 and good["value"] == pytest.approx(T.f1(good["precision"], good["recall"]))
    assert not m.lower_is_better and m.needs_generator
    ctx.begin(collapsed_generator)
    with torch.no_grad():
        collapsed = m.compute(ctx, collapsed_generator(z))
    assert collapsed["recall"] <= 0.1 and collapsed["value"] < good["value"]
    ctx.begin(drawing_generator)
    nan = m.compute(ctx, torch.full_like(good_samples, math.nan))
    assert all(math.isnan(v) for v in nan.values())
