"""spectral.eigen against NumPy's float64 eigensolvers and SVD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.spectral import eigen


def _features(b: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(b, d, generator=torch.Generator().manual_seed(seed))


def test_eigvalsh_batched_matches_numpy() -> None:
    x = _features(5 * 6, 9).reshape(5, 6, 9).double()
    grams = eigen.gram(x, left=True)
    want = np.linalg.eigvalsh(grams.numpy())[:, ::-1]
    got = eigen.eigvalsh(grams, descending=True, clip=True)
    np.testing.assert_allclose(got.numpy(), np.maximum(want, 0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(eigen.eigvalsh(grams).numpy(), want[:, ::-1], rtol=1e-12, atol=1e-12)


def test_eigh_reconstructs() -> None:
    g = eigen.gram(_features(7, 3).double(), left=False)
    lam, q = eigen.eigh(g)
    assert bool((lam[1:] >= lam[:-1]).all())
    torch.testing.assert_close(q @ torch.diag(lam) @ q.mT, g)


@pytest.mark.parametrize("precision", ["auto", "float64", "float32"])
@pytest.mark.parametrize(("b", "d"), [(12, 40), (40, 12)])
def test_smallest_eigenpairs_match_numpy_svd(precision: str, b: int, d: int) -> None:
    f = _features(b, d, seed=b)
    s2 = np.sort(np.linalg.svd(f.double().numpy(), compute_uv=False) ** 2)[:3]
    tol = 1e-10 if precision == "float64" else 1e-4  # float32 Gram: ~1e-7 of sigma_max^2
    host = eigen.smallest_eigenpairs_host(f, 3, precision)
    assert host is not None
    total, vec, left = host
    assert left == (b <= d) and vec.shape == (min(b, d), 3)
    assert total == pytest.approx(s2.sum(), rel=tol)
    dev_total, dev_vec, dev_left = eigen.smallest_eigenpairs_device(f, 3, precision)
    assert dev_left == left and float(dev_total) == pytest.approx(s2.sum(), rel=tol)
    # the same invariant subspace: |V_host^T V_device| is orthogonal
    overlap = np.abs(vec.T @ dev_vec.double().numpy())
    np.testing.assert_allclose(np.linalg.svd(overlap, compute_uv=False), 1.0, atol=1e-4)


def test_one_lapack_thread_restores_the_setting() -> None:
    before = torch.get_num_threads()
    with eigen.one_lapack_thread(torch.device("cpu")):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_solved_on_host_for_cpu_floats_only() -> None:
    assert eigen.solved_on_host(torch.zeros(3, 4))
    assert not eigen.solved_on_host(torch.zeros(3, 4, dtype=torch.complex64))


@pytest.mark.parametrize("n", [5, 40, eigen.COORDINATES_TRIDIAGONAL_MIN_N + 44])
def test_eigh_coordinates_match_numpy(n: int) -> None:
    """Eigenvalues and Q^T B agree with NumPy's eigh on both routes (torch below the size
    threshold, dsytrd + dormqr + dstemr from it on), up to each eigenvector's sign."""
    rng = np.random.default_rng(n)
    f = rng.standard_normal((n + 30, n))
    g = f.T @ f
    b = rng.standard_normal((n, 7))
    lam, z = eigen.eigh_coordinates(torch.from_numpy(g), torch.from_numpy(b))
    ref_lam, q = np.linalg.eigh(g)
    ref_z = q.T @ b
    np.testing.assert_allclose(lam.numpy(), ref_lam, rtol=1e-12, atol=1e-12 * ref_lam[-1])
    # each row of Z is defined up to the sign of its eigenvector
    signs = np.sign((z.numpy() * ref_z).sum(1, keepdims=True))
    np.testing.assert_allclose(z.numpy() * signs, ref_z, atol=1e-9 * np.abs(ref_z).max())


def test_eigh_coordinates_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"expected a square \(n, n\) matrix"):
        eigen.eigh_coordinates(torch.eye(3), torch.ones(4, 2))


@pytest.mark.parametrize("left", [True, False])
def test_gram_symmetric_product_matches_matmul(left: bool) -> None:
    """The NumPy syrk route (2-D CPU, > 64 on both sides) equals the plain product."""
    x = torch.randn(100, 90, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ref = x @ x.mT if left else x.mT @ x
    out = eigen.gram(x, left=left)
    torch.testing.assert_close(out, ref, rtol=1e-13, atol=1e-12)
    assert torch.equal(out, out.mT)
