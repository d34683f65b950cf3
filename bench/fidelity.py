"""The one place that imports torch-fidelity.

The harness computes FID with torch-fidelity's own two steps, `fid_features_to_statistics` and
`fid_statistics_to_metric` (its FID matches the TensorFlow reference to about 1e-6 relative), on
features it extracts itself. Features are cast to float64 before the statistics so mu and sigma
share a dtype (torch-fidelity asserts equal dtypes and would otherwise mix float32 mu with
float64 sigma).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric

__all__ = ["statistics", "frechet_distance", "KEY_METRIC_FID"]


def statistics(features: torch.Tensor) -> dict[str, np.ndarray]:
    """mu (D,) and sigma (D, D), float64, of an (N, D) feature matrix."""
    if features.dim() != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (N >= 2, D), got {tuple(features.shape)}")
    return fid_features_to_statistics(features.detach().cpu().to(torch.float64))


def frechet_distance(stats_1: dict[str, np.ndarray], stats_2: dict[str, np.ndarray]) -> float:
    """‖mu1 - mu2‖² + Tr(S1 + S2 - 2 (S1 S2)^½); NaN when either side holds a non-finite value."""
    for s in (stats_1, stats_2):
        if not (np.isfinite(s["mu"]).all() and np.isfinite(s["sigma"]).all()):
            return math.nan
    s1 = {k: np.asarray(v, dtype=np.float64) for k, v in stats_1.items()}
    s2 = {k: np.asarray(v, dtype=np.float64) for k, v in stats_2.items()}
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])
