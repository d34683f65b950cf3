"""Generated data that needs no download: `triangles` (Lucic et al. 2018, section 5) and 2-D mixtures.

`triangles` follows the generator the authors released (google/compare_gan,
colabs/Convex_Polygons_Dataset.ipynb, `GenerateConvexPolygon` with n_vertices=3,
min_segment_angle=20, scale=0.75, raster_dim=28, subpixel_res=8, shift_to_mean=True): vertex i
sits at angle i*120 + 10 + U*110 degrees on a circle, the polygon is rotated, scaled to 28*0.75,
its vertex mean moved to the raster centre, and each pixel is the fraction of its 8x8 subpixel
points that lie *outside* the polygon (a dark triangle on a white ground, 65 grey levels). Two of
the released code's quirks are kept so the data are the paper's: the rotation angle is
`radians(U * 2 * pi)`, i.e. at most 6.28 degrees, and a pixel's 8x8 window is the one
`scipy.ndimage.convolve` centres on it (subpixel rows 8p-3 .. 8p+4), with points beyond the
raster counted as outside. Draws are made from `np.random.RandomState(seed)` in the released
loop's order (3 vertex offsets then 1 rotation per polygon, then a final permutation), so
`generate_triangles(n, seed)` equals that code run with the same n and seed; it is vectorised
(each subpixel row crosses a convex polygon in one interval, so a pixel's count is computed
exactly from interval ends instead of testing 64 points). Splits as compare_gan's loader reads the
80,000: the first 60,000 train, the next 10,000 test, the last 10,000 hold-out.

`ring8` (Metz et al. 2017, unrolled GANs): 8 equally weighted Gaussians with means on a circle
of radius 2 and standard deviation 0.02. `grid25` (Srivastava et al. 2017, VEEGAN; Lin et al.
2018, PacGAN): 25 Gaussians with means (-4 + 2i, -4 + 2j), i, j in 0..4, standard deviation 0.05.
Samples are points, shape (N, 2); the component of each sample is kept as its label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TRIANGLES = dict(n_vertices=3, min_segment_angle=20.0, scale=0.75, raster_dim=28, subpixel_res=8, shift_to_mean=True)
TRIANGLES_SPLITS = {"train": (0, 60_000), "test": (60_000, 70_000), "holdout": (70_000, 80_000)}
TRIANGLES_SEED = 0
RASTERIZER = "interval-exact-v1"  # part of the cache key: change it when the rendering changes


def triangle_vertices(n: int, rs: np.random.RandomState) -> np.ndarray:
    """(n, 3, 2) vertices in raster units (row, column), drawn as the released generator draws them."""
    nv, min_angle = TRIANGLES["n_vertices"], TRIANGLES["min_segment_angle"]
    segment = 360.0 / nv
    draws = rs.rand(n, nv + 1)  # per polygon: nv vertex offsets, then the rotation
    angles = np.deg2rad(np.arange(nv) * segment + min_angle / 2.0 + draws[:, :nv] * (segment - min_angle / 2.0))
    x = (np.stack([np.cos(angles), np.sin(angles)], axis=-1) + 1.0) / 2.0  # (n, nv, 2) in [0, 1]^2
    theta = np.radians(draws[:, nv] * 2 * np.pi)  # [sic]: at most 2*pi degrees, as released
    c, s = np.cos(theta)[:, None], np.sin(theta)[:, None]
    x = np.stack([x[..., 0] * c + x[..., 1] * s, -x[..., 0] * s + x[..., 1] * c], axis=-1)  # row vectors @ [[c, -s], [s, c]]
    v = x * (TRIANGLES["raster_dim"] * TRIANGLES["scale"])
    if TRIANGLES["shift_to_mean"]:
        v += TRIANGLES["raster_dim"] / 2.0 - v.mean(axis=1, keepdims=True)
    return v


def rasterize_outside_counts(vertices: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """(n, D, D) uint8: how many of each pixel's 8x8 subpixel points lie outside the convex polygon.

    A subpixel point is (a, b) in integer subpixel units, a indexing rows; pixel (p, q) counts the
    points with a in [8p-3, 8p+4] and b in [8q-3, 8q+4] (scipy.ndimage.convolve's window for an
    8x8 kernel), points beyond the raster being outside. Row a meets the polygon in [lo(a), hi(a)].
    """
    dim, r = TRIANGLES["raster_dim"], TRIANGLES["subpixel_res"]
    sub = dim * r
    a = np.arange(sub, dtype=np.float64)
    win_lo = np.maximum(np.arange(dim) * r - (r // 2 - 1), 0)  # (dim,) first subpixel of each window
    win_hi = np.minimum(np.arange(dim) * r + r // 2, sub - 1)  # (dim,) last subpixel
    out = np.empty((len(vertices), dim, dim), dtype=np.uint8)
    for start in range(0, len(vertices), chunk):
        V = vertices[start : start + chunk] * r  # (m, nv, 2) in subpixel units
        P, Q = V, np.roll(V, -1, axis=1)  # edges P -> Q
        lo = np.full((len(V), sub), np.inf)
        hi = np.full((len(V), sub), -np.inf)
        for e in range(V.shape[1]):
            p0, p1, q0, q1 = (t[:, None] for t in (P[:, e, 0], P[:, e, 1], Q[:, e, 0], Q[:, e, 1]))
            crosses = (a >= np.minimum(p0, q0)) & (a <= np.maximum(p0, q0)) & (p0 != q0)
            with np.errstate(divide="ignore", invalid="ignore"):
                b = p1 + (a - p0) * (q1 - p1) / (q0 - p0)  # (m, sub) where the edge meets row a
            lo = np.where(crosses, np.minimum(lo, b), lo)
            hi = np.where(crosses, np.maximum(hi, b), hi)
        # int16 throughout: a count is at most 8 and a running row sum at most 8 * sub
        first = np.ceil(np.clip(lo, -1, sub)).astype(np.int16)[..., None]
        last = np.floor(np.clip(hi, -2, sub)).astype(np.int16)[..., None]
        inside_rows = np.minimum(last, win_hi.astype(np.int16)) - np.maximum(first, win_lo.astype(np.int16)) + 1
        np.maximum(inside_rows, 0, out=inside_rows)  # (m, sub, dim): inside points of row a in column window q
        cum = np.zeros((len(V), sub + 1, dim), np.int16)
        np.cumsum(inside_rows, axis=1, out=cum[:, 1:])
        inside = cum[:, win_hi + 1, :] - cum[:, win_lo, :]  # (m, dim, dim): summed over each row window
        out[start : start + chunk] = (r * r - inside).astype(np.uint8)
    return out


def generate_triangles(n: int = 80_000, seed: int = TRIANGLES_SEED) -> np.ndarray:
    """(n, 28, 28) uint8 outside-counts in 0..64 (the image is count / 64), permuted as released."""
    rs = np.random.RandomState(seed)
    counts = rasterize_outside_counts(triangle_vertices(n, rs))
    return counts[rs.permutation(n)]


@dataclass(frozen=True)
class Mixture:
    """An equally weighted mixture of isotropic 2-D Gaussians."""

    name: str
    centres: tuple[tuple[float, float], ...]
    std: float
    source: str

    @property
    def means(self) -> np.ndarray:  # (K, 2)
        return np.asarray(self.centres, dtype=np.float64)

    def sample(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, 2) float32 points and (n,) int64 component labels; a function of (n, seed) only."""
        rs = np.random.RandomState(seed)
        labels = rs.randint(len(self.centres), size=n)
        x = self.means[labels] + self.std * rs.randn(n, 2)
        return x.astype(np.float32), labels.astype(np.int64)


MIXTURES: dict[str, Mixture] = {
    "ring8": Mixture("ring8", tuple((2 * math.cos(2 * math.pi * k / 8), 2 * math.sin(2 * math.pi * k / 8)) for k in range(8)),
                     0.02, "Metz et al. 2017: 8 Gaussians on a circle of radius 2, std 0.02"),
    "grid25": Mixture("grid25", tuple((-4.0 + 2 * i, -4.0 + 2 * j) for i in range(5) for j in range(5)),
                      0.05, "VEEGAN/PacGAN: 25 Gaussians at (-4 + 2i, -4 + 2j), std 0.05"),
}
MIXTURE_SPLITS = {"train": 60_000, "test": 10_000}
MIXTURE_SEED = 0
