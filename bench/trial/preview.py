"""The picture a trial leaves (samples.png): an 8x8 image grid, or a scatter plot for 2-D points;
and for 2-D points, each checkpoint's density (`density_npz`), from which the report draws the
generator moving over the modes during training (the seed's Figure 1, Metz et al. 2017, figure 1).

Images (N, C, H, W) give torchvision's grid of the first 64 samples of the fixed evaluation z.
Points (N, 2) cannot be tiled, so they are drawn as a scatter of the first 2,500 generated points
(the sample count VEEGAN and PacGAN plot) over 2,500 real test points in grey, with equal axes, so
dropped or smeared modes are visible at a glance.
"""

from __future__ import annotations

import io

import numpy as np
import torch

SCATTER_POINTS = 2500
DENSITY_BINS = 64  # a 64 x 64 histogram of uint16 counts: 8 KiB per checkpoint before compression


def samples_png(samples: torch.Tensor, reference: torch.Tensor | None = None) -> bytes:
    """PNG bytes for generated `samples` (images or 2-D points); `reference` = real points to draw behind."""
    if samples.ndim == 4:
        import torchvision.utils

        buf = io.BytesIO()
        torchvision.utils.save_image(samples[:64].detach().cpu(), buf, format="png", nrow=8)
        return buf.getvalue()
    if samples.ndim == 2 and samples.shape[1] == 2:
        return _scatter_png(samples, reference)
    raise ValueError(f"no preview for samples of shape {tuple(samples.shape)}; expected (N, C, H, W) images or (N, 2) points")


def _scatter_png(points: torch.Tensor, reference: torch.Tensor | None) -> bytes:
    from matplotlib.figure import Figure  # no pyplot: no global backend state is touched

    fig = Figure(figsize=(4, 4), dpi=100)
    ax = fig.add_subplot()
    if reference is not None and isinstance(reference, torch.Tensor) and reference.ndim == 2:
        r = reference[:SCATTER_POINTS].detach().cpu().numpy()
        ax.scatter(r[:, 0], r[:, 1], s=2, c="0.75", linewidths=0, label="real (test)")
    g = points[:SCATTER_POINTS].detach().cpu().numpy()
    ax.scatter(g[:, 0], g[:, 1], s=2, c="tab:blue", linewidths=0, label="generated")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="upper right", fontsize=7, markerscale=4)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def density_npz(points: torch.Tensor, reference: torch.Tensor) -> bytes:
    """The 2-D histogram of generated (N, 2) `points` as .npz bytes: `counts` (DENSITY_BINS x
    DENSITY_BINS, uint16, or uint32 where a bin holds more than 65,535; rows are x, columns y, as
    numpy's histogram2d), `edges_x` and `edges_y` (DENSITY_BINS + 1 bin edges each, equal widths),
    `total` (N), `outside` (points beyond the window or not finite) and `reference_counts`, the
    real points' histogram on the same bins, which the report outlines for comparison. The window is the square around
    the real `reference` points, 1.5 times their wider extent, so every mode sits well inside it
    and all checkpoints of a study share one window."""
    ref = reference.detach().cpu().double().numpy()
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    centre, half = (lo + hi) / 2, 0.75 * float((hi - lo).max())
    edges = np.linspace(-half, half, DENSITY_BINS + 1)
    g = points.detach().cpu().double().numpy()
    counts, _, _ = np.histogram2d(g[:, 0] - centre[0], g[:, 1] - centre[1], bins=[edges, edges])
    real, _, _ = np.histogram2d(ref[:, 0] - centre[0], ref[:, 1] - centre[1], bins=[edges, edges])
    dtype = np.uint16 if counts.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32
    buf = io.BytesIO()
    np.savez_compressed(buf, counts=counts.astype(dtype), edges_x=edges + centre[0], edges_y=edges + centre[1],
                        total=np.int64(len(g)), outside=np.int64(len(g) - int(counts.sum())),
                        reference_counts=real.astype(np.uint16 if real.max(initial=0) <= np.iinfo(np.uint16).max else np.uint32))
    return buf.getvalue()
