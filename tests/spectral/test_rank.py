"""Marchenko-Pastur helpers and Gavish-Donoho thresholds against SciPy quadrature and the paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize

from spectral_probe.errors import ConfigError
from spectral_probe.spectral import (
    aspect_ratio,
    energy_rank,
    gavish_donoho_lambda,
    gavish_donoho_omega,
    gavish_donoho_rank,
    gavish_donoho_threshold,
    mp_cdf,
    mp_edges,
    mp_median,
    mp_singular_edges,
)


def _mp_density(x: float, beta: float) -> float:
    lo, hi = (1 - math.sqrt(beta)) ** 2, (1 + math.sqrt(beta)) ** 2
    return math.sqrt(max((hi - x) * (x - lo), 0.0)) / (2 * math.pi * beta * x)


def _scipy_cdf(x: float, beta: float) -> float:
    lo = (1 - math.sqrt(beta)) ** 2
    return integrate.quad(_mp_density, lo, x, args=(beta,), limit=200, epsabs=1e-12)[0]


@pytest.mark.parametrize("beta", [0.05, 0.3, 0.5, 0.9, 1.0])
def test_mp_cdf_matches_scipy_quadrature(beta: float) -> None:
    lo, hi = mp_edges(beta)
    xs = np.linspace(lo + 1e-6, hi - 1e-6, 7)
    ours = mp_cdf(xs, beta)
    ref = [_scipy_cdf(float(x), beta) for x in xs]
    np.testing.assert_allclose(ours, ref, atol=1e-7)
    assert mp_cdf(hi, beta)[0] == pytest.approx(1.0, abs=1e-12)
    assert mp_cdf(lo, beta)[0] == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("beta", [0.1, 0.5, 1.0])
def test_mp_median_matches_scipy_root(beta: float) -> None:
    lo, hi = mp_edges(beta)
    ref = optimize.brentq(lambda x: _scipy_cdf(x, beta) - 0.5, lo + 1e-12, hi)
    assert mp_median(beta) == pytest.approx(ref, rel=1e-6)


def test_square_case_constants_of_the_paper() -> None:
    assert gavish_donoho_lambda(1.0) == pytest.approx(4 / math.sqrt(3), rel=1e-12)
    assert mp_median(1.0) == pytest.approx(0.6528, abs=1e-4)
    assert gavish_donoho_omega(1.0) == pytest.approx(2.858, abs=1e-3)


@pytest.mark.parametrize("beta", np.linspace(0.05, 1.0, 12).tolist())
def test_omega_approximation_close_to_exact(beta: float) -> None:
    approx = 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43
    assert gavish_donoho_omega(beta, exact=False) == pytest.approx(approx, rel=1e-12)
    assert abs(gavish_donoho_omega(beta) - approx) < 0.02


def test_edges_and_aspect_ratio() -> None:
    assert mp_edges(0.25, variance=4.0) == pytest.approx((1.0, 9.0))
    assert mp_singular_edges(0.25, 2.0) == pytest.approx((1.0, 3.0))
    assert aspect_ratio((10, 40)) == aspect_ratio((40, 10)) == 0.25
    with pytest.raises(ConfigError, match="beta in"):
        mp_edges(1.5)
    with pytest.raises(ConfigError, match="matrix shape"):
        aspect_ratio((3,))


def test_noise_edge_matches_a_large_noise_matrix() -> None:
    gen = torch.Generator().manual_seed(0)
    m, n = 300, 1200
    z = torch.randn(m, n, generator=gen, dtype=torch.float64) / math.sqrt(n)
    s = torch.linalg.svdvals(z)
    lo, hi = mp_singular_edges(m / n)
    assert float(s[0]) == pytest.approx(hi, rel=0.03)
    assert float(s[-1]) == pytest.approx(lo, rel=0.05)
    # the median of the squared singular values is the MP median
    assert float(torch.median(s**2)) == pytest.approx(mp_median(m / n), rel=0.02)


def _numpy_gd_threshold(s: np.ndarray, m: int, n: int, sigma: float | None) -> float:
    beta = min(m, n) / max(m, n)
    lam = math.sqrt(2 * (beta + 1) + 8 * beta / (beta + 1 + math.sqrt(beta**2 + 14 * beta + 1)))
    if sigma is not None:
        return lam * math.sqrt(max(m, n)) * sigma
    lo, hi = mp_edges(beta)
    mu = optimize.brentq(lambda x: _scipy_cdf(x, beta) - 0.5, lo + 1e-12, hi)
    full = np.zeros(min(m, n))
    full[: s.size] = s
    return lam / math.sqrt(mu) * float(np.median(full))


@settings(max_examples=15, deadline=None)
@given(
    m=st.integers(2, 40),
    n=st.integers(2, 40),
    seed=st.integers(0, 2**16),
    known=st.booleans(),
)
def test_threshold_and_rank_match_numpy_transcription(
    m: int, n: int, seed: int, known: bool
) -> None:
    rng = np.random.default_rng(seed)
    s = np.sort(rng.exponential(size=min(m, n)))[::-1].copy()
    sigma = 0.1 if known else None
    tau = gavish_donoho_threshold(torch.from_numpy(s), (m, n), sigma=sigma)
    ref = _numpy_gd_threshold(s, m, n, sigma)
    assert tau == pytest.approx(ref, rel=1e-6)
    assert gavish_donoho_rank(s, (m, n), sigma=sigma) == int(np.sum(s > ref))


def test_rank_recovers_a_planted_signal() -> None:
    gen = torch.Generator().manual_seed(1)
    m, n, r = 200, 400, 5
    u = torch.linalg.qr(torch.randn(m, r, generator=gen, dtype=torch.float64)).Q
    v = torch.linalg.qr(torch.randn(n, r, generator=gen, dtype=torch.float64)).Q
    strength = torch.linspace(4.0, 8.0, r, dtype=torch.float64)
    noise = 0.5 * torch.randn(m, n, generator=gen, dtype=torch.float64) / math.sqrt(n)
    y = u @ torch.diag(strength) @ v.T + noise
    s = torch.linalg.svdvals(y)
    assert gavish_donoho_rank(s, (m, n)) == r
    assert gavish_donoho_rank(s, (m, n), sigma=0.5 / math.sqrt(n)) == r
    assert gavish_donoho_rank(s, (m, n), exact=False) == r


def test_low_rank_and_zero_spectra() -> None:
    # fewer values than min(m, n): the rest are zero, the median is zero, the rank is numerical
    assert gavish_donoho_threshold([3.0, 2.0], (64, 64)) == 0.0
    assert gavish_donoho_rank([3.0, 2.0, 1e-20], (64, 64)) == 2
    assert gavish_donoho_rank([0.0, 0.0], (4, 8)) == 0
    assert gavish_donoho_rank([], (4, 8)) == 0
    with pytest.raises(ConfigError, match="at most min"):
        gavish_donoho_rank([1.0] * 5, (4, 8))
    with pytest.raises(ConfigError, match="finite"):
        gavish_donoho_rank([float("nan")], (4, 8))


def test_energy_rank() -> None:
    s = np.array([3.0, 2.0, 1.0, 0.5])
    energy = np.cumsum(s**2) / np.sum(s**2)
    for fraction in (0.5, 0.9, 0.99, 1.0):
        assert (
            energy_rank(torch.from_numpy(s[::-1].copy()), fraction)
            == int(np.argmax(energy >= fraction)) + 1
        )
    assert energy_rank([2.0, 0.0, 0.0], 1.0) == 1
    assert energy_rank([0.0, 0.0], 0.9) == 0
    with pytest.raises(ConfigError, match="fraction"):
        energy_rank([1.0], 0.0)
