"""SVCCA and PWCCA against NumPy transcriptions (covariance-whitening CCA, google/svcca's PWCCA)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.errors import SpectralProbeError
from spectral_probe.similarity import DegenerateFeaturesError, pwcca, svcca


def inv_sqrt(c: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(c)
    return v @ np.diag(w**-0.5) @ v.T


def np_cca(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical correlations by whitening the covariances; and the X-side canonical variates."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    wx, wy = inv_sqrt(sxx), inv_sqrt(syy)
    u, rho, _ = np.linalg.svd(wx @ sxy @ wy)
    r = min(x.shape[1], y.shape[1])
    return rho[:r], xc @ wx @ u[:, :r]


def np_svcca(x: np.ndarray, y: np.ndarray, keep: float) -> float:
    reduced = []
    for m in (x, y):
        mc = m - m.mean(0)
        u, s, _ = np.linalg.svd(mc, full_matrices=False)
        share = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.argmax(share >= keep - 1e-12)) + 1
        reduced.append(u[:, :k] * s[:k])
    return float(np_cca(*reduced)[0].mean())


def np_pwcca(x: np.ndarray, y: np.ndarray) -> float:
    """google/svcca ``compute_pwcca`` for full-rank X narrower than Y: QR of the variates."""
    rho, dirns = np_cca(x, y)
    p, _ = np.linalg.qr(dirns)
    weights = np.abs(p.T @ x).sum(1)  # uncentred acts, as in the reference
    weights /= weights.sum()
    return float(weights @ rho)


def _pair(n, p, q, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) * np.linspace(0.2, 3.0, p) + 1.0
    y = np.tanh(x[:, : min(p, q)]) @ rng.normal(size=(min(p, q), q)) + 0.7 * rng.normal(size=(n, q))
    return x, y


@pytest.mark.parametrize(("n", "p", "q"), [(200, 6, 9), (120, 10, 4)])
def test_svcca_matches_numpy(n, p, q):
    x, y = _pair(n, p, q, seed=p)
    for keep in (1.0, 0.99, 0.8):
        assert svcca(x, y, keep) == pytest.approx(np_svcca(x, y, keep), abs=1e-10)
    assert svcca(x, y, 3) == pytest.approx(
        np_cca(*(np.linalg.svd(m - m.mean(0), full_matrices=False)[0][:, :3] for m in (x, y)))[
            0
        ].mean(),
        abs=1e-10,
    )


def test_pwcca_matches_google_svcca():
    x, y = _pair(300, 5, 8, seed=1)
    assert pwcca(x, y) == pytest.approx(np_pwcca(x, y), abs=1e-10)
    # Y narrower: PWCCA weighs by Y's features, i.e. pwcca(x, y) == reference(y, x)
    assert pwcca(y[:, :3], x) == pytest.approx(np_pwcca(y[:, :3], x), abs=1e-10)
    assert pwcca(x, y[:, :3]) == pytest.approx(np_pwcca(y[:, :3], x), abs=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 10), st.integers(0, 2**31 - 1))
def test_cca_metrics_are_one_for_invertible_linear_maps(p, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(4 * p + 10, p))
    a = rng.normal(size=(p, p)) + 3 * np.eye(p)  # invertible (well conditioned)
    y = x @ a - 4.0
    assert pwcca(x, y) == pytest.approx(1.0, abs=1e-8)
    assert pwcca(y, x) == pytest.approx(1.0, abs=1e-8)
    assert svcca(x, y, keep=1.0) == pytest.approx(1.0, abs=1e-8)


def test_cca_of_independent_features_is_small_when_n_is_large():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(4000, 5)), rng.normal(size=(4000, 5))
    assert svcca(x, y, 1.0) < 0.1 and pwcca(x, y) < 0.1


def test_rank_deficient_and_degenerate_inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(50, 3))
    wide = np.hstack([x, x @ rng.normal(size=(3, 4)), np.ones((50, 1))])  # rank 3 plus a constant
    assert pwcca(x, wide) == pytest.approx(1.0, abs=1e-8)
    assert svcca(x, wide, keep=1.0) == pytest.approx(1.0, abs=1e-8)
    with pytest.raises(DegenerateFeaturesError, match="constant"):
        pwcca(x, np.ones((50, 2)))
    with pytest.raises(DegenerateFeaturesError, match="constant"):
        svcca(np.zeros((50, 2)), x)
    for keep in (0.0, 1.5, 0, True, "all"):
        with pytest.raises(SpectralProbeError, match="keep"):
            svcca(x, x, keep)  # type: ignore[arg-type]
