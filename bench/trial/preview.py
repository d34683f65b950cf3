"""The picture a trial leaves (samples.png): an 8x8 image grid, or a scatter plot for 2-D points.

Images (N, C, H, W) give torchvision's grid of the first 64 samples of the fixed evaluation z.
Points (N, 2) cannot be tiled, so they are drawn as a scatter of the first 2,500 generated points
(the sample count VEEGAN and PacGAN plot) over 2,500 real test points in grey, with equal axes, so
dropped or smeared modes are visible at a glance.
"""

from __future__ import annotations

import io

import torch

SCATTER_POINTS = 2500


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
