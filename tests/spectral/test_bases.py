"""``spectral_probe.spectral.bases`` against NumPy/SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from spectral_probe.spectral import canonical_correlations, nuclear_norm, orthonormal_basis


def test_nuclear_norm_matches_numpy():
    a = np.random.default_rng(0).normal(size=(7, 4))
    assert float(nuclear_norm(torch.from_numpy(a))) == pytest.approx(
        np.linalg.norm(a, "nuc"), rel=1e-13
    )
    assert float(nuclear_norm(torch.zeros(0, 3))) == 0.0


def test_orthonormal_basis_is_rank_revealing_and_spans_the_columns():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(9, 3)) @ rng.normal(size=(3, 5))  # rank 3
    q = orthonormal_basis(torch.from_numpy(a)).numpy()
    assert q.shape == (9, 3)
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(q @ (q.T @ a), a, atol=1e-10)  # projection onto span(q) keeps a
    assert orthonormal_basis(torch.zeros(4, 2)).shape == (4, 0)


def test_canonical_correlations_are_the_cosines_of_scipys_principal_angles():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 6))
    qx, qy = (orthonormal_basis(torch.from_numpy(m)) for m in (x, y))
    rho, a, b = canonical_correlations(qx, qy)
    expected = np.sort(np.cos(scipy.linalg.subspace_angles(x, y)))[::-1]
    np.testing.assert_allclose(rho.numpy(), expected, atol=1e-12)
    # the canonical variates Q_x A and Q_y B pair up with correlations rho
    hx, hy = (qx @ a).numpy(), (qy @ b).numpy()
    np.testing.assert_allclose(np.diag(hx.T @ hy), rho.numpy(), atol=1e-12)
    with pytest.raises(ValueError, match="same number of rows"):
        canonical_correlations(qx, qy[:5])
