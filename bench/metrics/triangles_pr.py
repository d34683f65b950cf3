"""Precision, recall and F1 on `triangles`, in the manner of Lucic et al. 2018, section 5.

The data (bench/data/synthetic.py, compare_gan's generator): 28x28 grey images of one convex triangle
each, its vertex mean at the centre, a pixel the share of its 8x8 subpixel points outside the
triangle (dark triangle, light ground). The data manifold is known, so quality and coverage can
be measured apart:

- distance: d(x, y) = ‖x - y‖₂ / √(H·W), the root-mean-square pixel difference, in [0, 1].
- **recall** (the paper's recipe): for each test triangle x, invert the generator,
  z* = argmin_z ‖G(z) - x‖², with Adam (lr 0.05, `steps` steps, z kept in the prior's box
  [-1, 1]) from `restarts` random starts drawn with the study's evaluation seed; x is recalled
  when min over restarts of d(G(z*), x) ≤ δ.
- **precision** (the paper does not publish its procedure; ours): a generated sample y is
  precise when its distance to the triangle manifold is ≤ δ. That distance is estimated from
  above as the smaller of (a) the distance to the nearest reference (test) triangle and (b) the
  distance to the best triangle fitted to y: three vertices optimised with Adam through a soft
  rasteriser (pixel coverage ≈ Π over edges of sigmoid(signed distance / 0.25 px), whose slope
  matches the box filter of supersampling), from `restarts` rotations of the equilateral
  triangle with y's intensity centroid and second moment, then rendered *exactly* (8x8
  supersampling). The fitted triangle counts only when it is like the reference triangles
  (area, centring, no sliver: `manifold_distance`), so a blank or scribbled sample is far from
  the manifold, a slightly blurred one or one shifted by a pixel is near it, one far off centre
  is not (the data are centred). The fit is free to shift
  by sub-pixel amounts, so the rasteriser's pixel-window convention does not matter.
- F1 = 2PR / (P + R) (0 when both are 0); δ = 0.05 by default (a triangle shifted by a quarter
  of a pixel is at about 0.04, a 3x3 box blur at about 0.07, an empty image at 0.2 to 0.4).

`triangles_prf_*` records F1 (its value, higher is better), precision, recall and the mean
precision and recall distances; `triangles_dist_*` is the mean of those two mean distances
(lower is better, no threshold), so a triangles study has an objective to minimise. Listed
together they share one computation.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch

SUPERSAMPLE = 8
SOFT_TAU = 0.25  # px; sigmoid slope 1/(4 tau) = 1 per px, the slope of a box-filtered edge
MIN_ANGLE_DEG = 2.0  # no slivers; the data's interior angles go down to about 5° (20° is between vertices on the circle)
AREA_SLACK = (0.8, 1.25)
CENTRE_SLACK_PX = 1.5  # the data are centred; a sample may sit this much further off centre than any of them


def rms_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, ...) x (N, ...) -> (N,): ‖x - y‖₂ / √(number of pixels)."""
    return (x - y).flatten(1).pow(2).mean(1).sqrt()


def _edge_terms(v: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Signed distances (px, positive inside) of points to the three edges. v (B, 3, 2) as (x, y);
    px (P, 2) -> (B, 3, P). The sign is fixed by the triangle's orientation, so any vertex order works."""
    a = v
    e = v.roll(-1, dims=1) - a  # (B, 3, 2): edges a_i -> a_{i+1}
    # cross(e, p - a) = e_x p_y - e_y p_x - (e_x a_y - e_y a_x): one matmul over all points
    normal = torch.stack([-e[..., 1], e[..., 0]], -1)  # (B, 3, 2)
    offset = e[..., 0] * a[..., 1] - e[..., 1] * a[..., 0]  # (B, 3)
    cross = normal @ px.T - offset[..., None]  # (B, 3, P)
    area2 = e[:, 0, 0] * (v[:, 2, 1] - v[:, 0, 1]) - e[:, 0, 1] * (v[:, 2, 0] - v[:, 0, 0])  # (B,) twice the signed area
    sign = torch.where(area2 >= 0, 1.0, -1.0).to(v.dtype)
    return cross * (sign[:, None] / e.norm(dim=-1).clamp_min(1e-6))[..., None]


def _grid(size: int, per_pixel: int, device: torch.device) -> torch.Tensor:
    c = (torch.arange(size * per_pixel, device=device, dtype=torch.float32) + 0.5) / per_pixel
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], dim=1)  # (P, 2) as (x, y), row-major


def render(v: torch.Tensor, size: int = 28, chunk: int = 64) -> torch.Tensor:
    """Exact rendering: (B, 3, 2) vertices in pixel units -> (B, 1, size, size), each pixel the
    share of its 8x8 subsamples inside the triangle."""
    px = _grid(size, SUPERSAMPLE, v.device)
    out = []
    for i in range(0, len(v), chunk):
        inside = (_edge_terms(v[i : i + chunk].float(), px) >= 0).all(1).float()  # (b, P)
        s = SUPERSAMPLE
        img = inside.view(-1, size, s, size, s).mean(dim=(2, 4))
        out.append(img)
    return torch.cat(out).unsqueeze(1) if out else v.new_zeros(0, 1, size, size)


def soft_render(v: torch.Tensor, size: int = 28) -> torch.Tensor:
    """Differentiable approximation at pixel centres: (B, 3, 2) -> (B, 1, size, size)."""
    px = _grid(size, 1, v.device)
    s = torch.sigmoid(_edge_terms(v, px) * (1.0 / SOFT_TAU))  # (B, 3, P)
    cov = s[:, 0] * s[:, 1] * s[:, 2]  # (B, P); explicit product: prod()'s backward is far slower
    return cov.view(-1, 1, size, size)


def angles_deg(v: torch.Tensor) -> torch.Tensor:
    """(B, 3, 2) -> (B, 3) interior angles in degrees."""
    out = []
    for i in range(3):
        a, b, c = v[:, i], v[:, (i + 1) % 3], v[:, (i + 2) % 3]
        u, w = b - a, c - a
        cos = (u * w).sum(-1) / (u.norm(dim=-1) * w.norm(dim=-1)).clamp_min(1e-9)
        out.append(torch.rad2deg(torch.arccos(cos.clamp(-1, 1))))
    return torch.stack(out, 1)


def area(v: torch.Tensor) -> torch.Tensor:
    e1, e2 = v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]
    return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).abs()


def _moment_init(x: torch.Tensor, restarts: int, gen: torch.Generator) -> torch.Tensor:
    """(N, 1, H, W) -> (N * restarts, 3, 2): equilateral triangles with each image's intensity
    centroid and second moment (for a uniform triangle, E‖p - c‖² = r² / 4), rotated per restart."""
    n, _, h, w = x.shape
    m = x[:, 0].clamp_min(0)
    mass = m.sum((1, 2)).clamp_min(1e-6)
    ys = torch.arange(h, device=x.device, dtype=torch.float32) + 0.5
    xs = torch.arange(w, device=x.device, dtype=torch.float32) + 0.5
    cx = (m.sum(1) * xs).sum(1) / mass
    cy = (m.sum(2) * ys).sum(1) / mass
    var = ((m.sum(1) * (xs - cx[:, None]) ** 2).sum(1) + (m.sum(2) * (ys - cy[:, None]) ** 2).sum(1)) / mass
    r = (2 * var.clamp_min(1.0).sqrt()).repeat_interleave(restarts)
    phase = torch.rand(n * restarts, generator=gen).to(x.device) * (2 * math.pi / 3)
    phase = phase + torch.arange(restarts, device=x.device).repeat(n) * (2 * math.pi / (3 * restarts))
    k = torch.arange(3, device=x.device) * (2 * math.pi / 3)
    ang = phase[:, None] + k[None, :]  # (N*R, 3)
    centre = torch.stack([cx, cy], 1).repeat_interleave(restarts, 0)  # (N*R, 2)
    return centre[:, None, :] + r[:, None, None] * torch.stack([ang.cos(), ang.sin()], -1)


def fit_triangles(x: torch.Tensor, restarts: int = 4, steps: int = 200, lr: float = 0.3, seed: int = 0) -> torch.Tensor:
    """Vertices (N, 3, 2) of the triangle whose soft rendering best matches each image."""
    n = len(x)
    gen = torch.Generator().manual_seed(seed)
    v = _moment_init(x.float(), restarts, gen).detach().requires_grad_(True)  # x in coverage (bright triangle)
    target = x.float().repeat_interleave(restarts, 0)
    opt = torch.optim.Adam([v], lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            loss = (soft_render(v, x.shape[-1]) - target).pow(2).flatten(1).sum(1)
            opt.zero_grad(set_to_none=True)
            loss.sum().backward()
            opt.step()
    with torch.no_grad():
        loss = (soft_render(v, x.shape[-1]) - target).pow(2).flatten(1).sum(1).view(n, restarts)
        best = loss.argmin(1)
        return v.detach().view(n, restarts, 3, 2)[torch.arange(n), best]


def _centroids(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) coverage -> (N, 2) intensity centroids (x, y) in pixel units."""
    m = x[:, 0].clamp_min(0)
    mass = m.sum((1, 2)).clamp_min(1e-6)
    ys = torch.arange(x.shape[-2], device=x.device, dtype=x.dtype) + 0.5
    xs = torch.arange(x.shape[-1], device=x.device, dtype=x.dtype) + 0.5
    return torch.stack([(m.sum(1) * xs).sum(1) / mass, (m.sum(2) * ys).sum(1) / mass], 1)


def dark_on_light(reference: torch.Tensor) -> bool:
    """Whether the data draw dark triangles on a light ground (compare_gan's do): then coverage = 1 - pixel."""
    return bool(reference.float().mean() > 0.5)


@torch.no_grad()
def manifold_distance(y: torch.Tensor, reference: torch.Tensor, restarts: int = 4, steps: int = 100, seed: int = 0,
                      batch: int = 500) -> torch.Tensor:
    """(N,) upper estimate of each sample's RMS distance to the triangle manifold (module docstring).

    Fits happen in coverage space (1 - pixel for dark-on-light data; distances do not change).
    A fitted triangle counts when it is like the reference triangles: area (a coverage sum is an
    area in px²) within [0.8, 1.25] x their range, vertex mean (= a triangle's centroid) no further
    from their median centroid than the furthest of theirs plus 1.5 px, and no angle under 2°."""
    dark = dark_on_light(reference)
    ref = reference.float()
    ref = 1 - ref if dark else ref
    y = 1 - y.float() if dark else y.float()
    mass = ref.flatten(1).sum(1)
    a_lo, a_hi = float(mass.min()) * AREA_SLACK[0], float(mass.max()) * AREA_SLACK[1]
    cents = _centroids(ref)
    c0 = cents.median(0).values
    c_radius = float((cents - c0).norm(dim=1).max()) + CENTRE_SLACK_PX
    flat = ref.flatten(1)
    out = []
    for i in range(0, len(y), batch):
        yb = y[i : i + batch]
        nn = torch.cdist(yb.flatten(1), flat).min(1).values / math.sqrt(flat.shape[1])
        v = fit_triangles(yb, restarts, steps, seed=seed + i)
        fitted = rms_distance(render(v, yb.shape[-1]), yb)
        a = area(v)
        valid = ((angles_deg(v).min(1).values >= MIN_ANGLE_DEG) & (a >= a_lo) & (a <= a_hi)
                 & ((v.mean(1) - c0).norm(dim=1) <= c_radius))
        out.append(torch.minimum(nn, torch.where(valid, fitted, torch.full_like(fitted, math.inf))))
    return torch.cat(out)


def invert_distance(generator: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, z_dim: int, restarts: int = 3,
                    steps: int = 300, lr: float = 0.05, seed: int = 0, batch: int = 500) -> torch.Tensor:
    """(N,) min over restarts of d(G(z*), x), z* = argmin ‖G(z) - x‖² by Adam in the box [-1, 1]^z_dim."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    per = max(1, batch // restarts)
    for i in range(0, len(x), per):
        xb = x[i : i + per].float()
        target = xb.repeat_interleave(restarts, 0)
        z = (torch.rand(len(target), z_dim, generator=gen) * 2 - 1).to(x.device).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                loss = (generator(z) - target).pow(2).flatten(1).sum(1).sum()
                (grad,) = torch.autograd.grad(loss, [z])  # gradients for z only, none into G's weights
                z.grad = grad
                opt.step()
                with torch.no_grad():
                    z.clamp_(-1, 1)
        with torch.no_grad():
            d = rms_distance(generator(z.detach()), target).view(len(xb), restarts).min(1).values
        out.append(d)
    return torch.cat(out)


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def triangles_pr(ctx, images: torch.Tensor, count: int, delta: float, restarts: int, invert_steps: int, fit_steps: int,
                 split: str = "test") -> dict[str, float]:
    """Precision, recall, F1 and mean distances; computed once per evaluation and shared by the
    `triangles_prf_*` and `triangles_dist_*` metrics of the same protocol."""
    key = ("triangles", count, delta, restarts, invert_steps, fit_steps, split, images.data_ptr())
    if key in ctx._features:
        return ctx._features[key]
    nan = {"f1": math.nan, "precision": math.nan, "recall": math.nan, "precision_distance": math.nan, "recall_distance": math.nan}
    if len(images) < count:
        raise ValueError(f"triangles metric needs {count} generated images, got {len(images)}")
    images = images[:count]
    if not torch.isfinite(images).all():
        return nan
    if ctx.generator is None:
        raise ValueError("the triangles metric inverts the generator; the evaluation passed none")
    real = ctx.data.split(split)
    if len(real) < count:
        raise ValueError(f"{ctx.data.name} {split} split has {len(real)} images, the metric needs {count}")
    real = real[:count].to(ctx.device)
    d_prec = manifold_distance(images.to(ctx.device), real, restarts + 1, fit_steps, ctx.seed, ctx.batch_size)
    d_rec = invert_distance(ctx.generator, real, ctx.z_dim, restarts, invert_steps, seed=ctx.seed, batch=ctx.batch_size)
    if not torch.isfinite(d_rec).all():
        return nan
    p = float((d_prec <= delta).float().mean())
    r = float((d_rec <= delta).float().mean())
    finite = d_prec[torch.isfinite(d_prec)]
    out = {"f1": f1(p, r), "precision": p, "recall": r,
           "precision_distance": float(finite.mean()) if len(finite) == len(d_prec) else math.inf,
           "recall_distance": float(d_rec.mean())}
    ctx._features[key] = out
    return out


def triangles_prf(count: int, delta: float = 0.05, restarts: int = 3, invert_steps: int = 300, fit_steps: int = 100):
    """compute(ctx, images) -> F1 (higher is better) with precision, recall and the mean distances."""

    def compute(ctx, images: torch.Tensor) -> dict[str, float]:
        out = triangles_pr(ctx, images, count, delta, restarts, invert_steps, fit_steps)
        return {"value": out["f1"], **{k: v for k, v in out.items() if k != "f1"}}

    return compute


def triangles_dist(count: int, delta: float = 0.05, restarts: int = 3, invert_steps: int = 300, fit_steps: int = 100):
    """compute(ctx, images) -> the mean of the mean precision and recall distances (lower is better,
    no threshold): the objective for triangles studies, whose objective must be minimised."""

    def compute(ctx, images: torch.Tensor) -> dict[str, float]:
        out = triangles_pr(ctx, images, count, delta, restarts, invert_steps, fit_steps)
        return {"value": 0.5 * (out["precision_distance"] + out["recall_distance"])}

    return compute


def generator_fn(G: torch.nn.Module, mode: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """z -> G(z) with batch norm as the study samples ('eval': running statistics; 'train': batch
    statistics of a copy, so G's own running averages are not touched)."""
    net = copy.deepcopy(G).train() if mode == "train" else copy.deepcopy(G).eval()
    net.requires_grad_(False)
    return net
