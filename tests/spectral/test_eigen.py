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
