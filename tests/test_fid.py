"""FID: the Fréchet distance against closed forms and an independent implementation (scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

from bench.metrics import fidelity


def test_frechet_distance_diagonal_closed_form():
    """For commuting (diagonal) covariances: ‖mu1-mu2‖² + Σ (√a_i - √b_i)²."""
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 16.0])
    s1 = {"mu": np.array([0.0, 1.0, 2.0]), "sigma": np.diag(a)}
    s2 = {"mu": np.array([1.0, 1.0, 0.0]), "sigma": np.diag(b)}
    expected = 1.0 + 0.0 + 4.0 + ((1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 4) ** 2)
    assert fidelity.frechet_distance(s1, s2) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_general_against_scipy_sqrtm():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    S1, S2 = A @ A.T + 0.1 * np.eye(6), B @ B.T + 0.1 * np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    covmean = scipy.linalg.sqrtm(S1 @ S2).real
    expected = float(((mu1 - mu2) ** 2).sum() + np.trace(S1 + S2 - 2 * covmean))
    got = fidelity.frechet_distance({"mu": mu1, "sigma": S1}, {"mu": mu2, "sigma": S2})
    assert got == pytest.approx(expected, rel=1e-6)


def test_statistics_of_gaussian_samples_give_closed_form_fid():
    """Samples from N(m1, I) and N(m2, 4I) in 4-d: FID -> ‖m1-m2‖² + 4 (1 - 2)² as N grows."""
    g = torch.Generator().manual_seed(0)
    n, d = 200_000, 4
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = 2.0 * torch.randn(n, d, generator=g, dtype=torch.float64) + 1.0
    expected = d * 1.0 + d * (1.0 - 2.0) ** 2
    got = fidelity.frechet_distance(fidelity.statistics(x), fidelity.statistics(y))
    assert got == pytest.approx(expected, rel=2e-2)


def test_identical_statistics_give_zero_and_nan_gives_nan():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(1))
    s = fidelity.statistics(x)
    assert fidelity.frechet_distance(s, s) == pytest.approx(0.0, abs=1e-8)
    bad = {"mu": s["mu"].copy(), "sigma": s["sigma"]}
    bad["mu"][0] = np.nan
    assert math.isnan(fidelity.frechet_distance(bad, s))


def test_statistics_are_float64_for_float32_features():
    s = fidelity.statistics(torch.randn(10, 3))
    assert s["mu"].dtype == np.float64 and s["sigma"].dtype == np.float64
