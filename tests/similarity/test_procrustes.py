"""The orthogonal Procrustes distance against SciPy's orthogonal_procrustes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import orthogonal_procrustes
from scipy.stats import ortho_group

from spectral_probe.similarity import DegenerateFeaturesError, procrustes


def np_procrustes(x: np.ndarray, y: np.ndarray) -> float:
    """min over orthogonal Q of ||X Q - Y||_F^2 after centring and unit scaling (zero-padded)."""
    width = max(x.shape[1], y.shape[1])
    x, y = (np.pad(m - m.mean(0), ((0, 0), (0, width - m.shape[1]))) for m in (x, y))
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    r, _ = orthogonal_procrustes(x, y)
    return float(np.linalg.norm(x @ r - y) ** 2)


@pytest.mark.parametrize(("p", "q"), [(5, 5), (3, 7), (8, 2)])
def test_procrustes_matches_scipy(p, q):
    rng = np.random.default_rng(p * q)
    x = rng.normal(size=(30, p))
    y = np.tanh(x[:, :1]) * rng.normal(size=(1, q)) + rng.normal(size=(30, q))
    assert procrustes(x, y) == pytest.approx(np_procrustes(x, y), abs=1e-12)
    assert procrustes(x, y) == pytest.approx(procrustes(y, x), abs=1e-12)
    assert 0.0 <= procrustes(x, y) <= 2.0


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 30), st.integers(1, 10), st.integers(0, 2**31 - 1), st.floats(0.01, 100.0))
def test_procrustes_of_x_and_xq_is_zero(n, p, seed, scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    q = ortho_group.rvs(p, random_state=seed) if p > 1 else np.array([[-1.0]])
    assert procrustes(x, scale * x @ q + 2.0) == pytest.approx(0.0, abs=1e-9)


def test_constant_features_raise():
    with pytest.raises(DegenerateFeaturesError, match="constant"):
        procrustes(np.ones((6, 2)), np.eye(6)[:, :2])
