"""spectral.compare_matrices against a NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.spectral import compare_matrices


def _rand(m: int, n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((m, n)))


@pytest.mark.parametrize("shape", [(12, 30), (30, 12), (16, 16)])
@pytest.mark.parametrize("vectors", ["left", "right"])
def test_matches_numpy_reference(shape, vectors):
    a = _rand(*shape, 0)
    b = a + 0.05 * _rand(*shape, 1)
    ua, sa, vha = np.linalg.svd(a.numpy(), full_matrices=False)
    ub, sb, vhb = np.linalg.svd(b.numpy(), full_matrices=False)
    basis_a, basis_b = (ua, ub) if vectors == "left" else (vha.T, vhb.T)
    ref_cos = np.abs((basis_a * basis_b).sum(0))
    res = compare_matrices(a, b, vectors=vectors, top_k=4)
    np.testing.assert_allclose(res.s_a.numpy(), sa, rtol=1e-10)
    np.testing.assert_allclose(res.s_b.numpy(), sb, rtol=1e-10)
    np.testing.assert_allclose(res.cos.numpy(), ref_cos, atol=1e-8)
    assert res.e_norm == pytest.approx(np.linalg.norm((b - a).numpy(), 2), rel=1e-6)
    assert res.e_fro == pytest.approx(np.linalg.norm((b - a).numpy()), rel=1e-12)
    ref_principal = np.linalg.svd(basis_a[:, :4].T @ basis_b[:, :4], compute_uv=False)
    np.testing.assert_allclose(res.principal.numpy(), ref_principal, atol=1e-8)


def test_identical_matrices():
    a = _rand(10, 20, 2)
    res = compare_matrices(a, a.clone())
    np.testing.assert_allclose(res.cos.numpy(), 1.0, atol=1e-12)
    np.testing.assert_allclose(res.cos_window.numpy(), 1.0, atol=1e-12)
    assert res.e_norm == 0.0
    assert torch.all(res.sin_bound == 0)


def test_degenerate_spectrum_window_view():
    """Equal singular values: index matching is arbitrary, the spectral-window view is not."""
    rng = np.random.default_rng(3)
    q1, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    q2, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    s = np.array([5, 4, 3, 3, 3, 3, 1, 0.5])
    a = torch.from_numpy(q1 @ np.diag(s) @ q2.T)
    # a tiny perturbation picks an arbitrary basis inside the 4-dimensional sigma = 3 space
    b = a + 1e-6 * torch.from_numpy(rng.standard_normal((8, 8)))
    res = compare_matrices(a, b)
    assert res.window.tolist() == [1, 1, 4, 4, 4, 4, 1, 1]
    np.testing.assert_allclose(res.cos_window.numpy(), 1.0, atol=1e-4)
    assert torch.all(res.sin_bound[2:6] == 1.0)  # no guarantee index by index
    assert torch.all(res.sin_bound[[0, 1, 6, 7]] < 1e-4)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same 2-D shape"):
        compare_matrices(torch.zeros(2, 3), torch.zeros(3, 2))
