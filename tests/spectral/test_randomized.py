"""Randomized SVD against NumPy's SVD, and its a-posteriori bounds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.errors import ConfigError
from spectral_probe.spectral import DenseOperator, randomized_svd, triplet_residuals


def _matrix(m: int, n: int, spectrum: np.ndarray, seed: int = 0) -> torch.Tensor:
    """``U diag(spectrum) V^T`` with random orthonormal ``U``, ``V``."""
    rng = np.random.default_rng(seed)
    r = spectrum.size
    u = np.linalg.qr(rng.standard_normal((m, r)))[0]
    v = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return torch.from_numpy(u @ np.diag(spectrum) @ v.T)


def test_recovers_a_decaying_spectrum_and_vectors() -> None:
    spectrum = 0.7 ** np.arange(40)
    a = _matrix(120, 80, spectrum)
    out = randomized_svd(a, 8, niter=4)
    u_ref, s_ref, vh_ref = np.linalg.svd(a.numpy(), full_matrices=False)
    np.testing.assert_allclose(out.S.numpy(), s_ref[:8], rtol=1e-10)
    # vectors up to sign
    np.testing.assert_allclose(np.abs(np.sum(out.U.numpy() * u_ref[:, :8], axis=0)), 1.0, atol=1e-8)
    np.testing.assert_allclose(np.abs(np.sum(out.V.numpy() * vh_ref[:8].T, axis=0)), 1.0, atol=1e-8)
    assert float(out.bound.max()) < 1e-8


def test_residuals_are_those_of_numpy_and_bound_a_true_singular_value() -> None:
    rng = np.random.default_rng(3)
    a_np = rng.standard_normal((60, 45))  # flat spectrum: the sketch is poor on purpose
    out = randomized_svd(torch.from_numpy(a_np), 5, oversample=2, niter=0, seed=1)
    u, s, v = out.U.numpy(), out.S.numpy(), out.V.numpy()
    r_u = np.linalg.norm(a_np @ v - u * s, axis=0)
    r_v = np.linalg.norm(a_np.T @ u - v * s, axis=0)
    np.testing.assert_allclose(out.residual_left.numpy(), r_u, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.residual_right.numpy(), r_v, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(out.bound.numpy(), np.sqrt((r_u**2 + r_v**2) / 2), rtol=1e-12)
    truth = np.concatenate([np.linalg.svd(a_np, compute_uv=False), [0.0]])  # 60 > 45: zeros count
    for sigma, delta in zip(s, out.bound.numpy(), strict=True):
        assert np.min(np.abs(truth - sigma)) <= delta * (1 + 1e-12)
    # interlacing: the estimates never exceed the true values
    assert np.all(s <= truth[:5] * (1 + 1e-12))
    assert float(out.bound.max()) > 1e-3  # a rough sketch says so


def test_seeded_and_deterministic() -> None:
    a = torch.randn(50, 40, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    one = randomized_svd(a, 4, niter=1, seed=7)
    two = randomized_svd(a, 4, niter=1, seed=7)
    other = randomized_svd(a, 4, niter=1, seed=8)
    assert torch.equal(one.S, two.S) and torch.equal(one.U, two.U)
    assert not torch.equal(one.U, other.U)


def test_float64_by_default_and_dtype_choice() -> None:
    a = torch.randn(20, 10, generator=torch.Generator().manual_seed(0))
    assert randomized_svd(a, 3).S.dtype == torch.float64
    assert randomized_svd(a, 3, dtype=torch.float32).S.dtype == torch.float32


def test_degenerate_inputs() -> None:
    zero = torch.zeros(12, 9, dtype=torch.float64)
    out = randomized_svd(zero, 3)
    assert torch.all(out.S == 0) and torch.isfinite(out.U).all() and torch.isfinite(out.bound).all()
    rank2 = _matrix(30, 20, np.array([3.0, 1.0]))
    out = randomized_svd(rank2, 6)  # k above the rank: zeros, finite, bounded
    np.testing.assert_allclose(out.S.numpy()[:2], [3.0, 1.0], rtol=1e-12)
    assert float(out.S[2:].abs().max()) < 1e-12 and torch.isfinite(out.U).all()
    with pytest.raises(ConfigError, match=r"1 <= k <= min\(m, n\) = 9, found k = 10"):
        randomized_svd(zero, 10)
    with pytest.raises(ConfigError, match="found k = 0"):
        randomized_svd(zero, 0)
    with pytest.raises(ConfigError, match="2-D matrix"):
        randomized_svd(torch.zeros(3), 1)


@settings(max_examples=20, deadline=None)
@given(m=st.integers(1, 30), n=st.integers(1, 30), data=st.data())
def test_exact_when_the_sketch_covers_the_matrix(m: int, n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, min(m, n)))
    seed = data.draw(st.integers(0, 1000))
    a = torch.randn(m, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    out = randomized_svd(a, k, oversample=min(m, n))
    s_ref = np.linalg.svd(a.numpy(), compute_uv=False)
    np.testing.assert_allclose(out.S.numpy(), s_ref[:k], rtol=1e-9, atol=1e-12)
    assert out.U.shape == (m, k) and out.V.shape == (n, k)
    r_u, r_v, _ = triplet_residuals(DenseOperator(a), out.S, out.U, out.V)
    assert float(torch.maximum(r_u, r_v).max()) < 1e-9 * max(1.0, float(s_ref[0]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    a = _matrix(200, 150, 0.8 ** np.arange(60))
    cpu = randomized_svd(a, 10)
    gpu = randomized_svd(a.cuda(), 10)
    np.testing.assert_allclose(gpu.S.cpu().numpy(), cpu.S.numpy(), rtol=1e-5)


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 30),
    n=st.integers(1, 30),
    cols=st.integers(1, 5),
    block=st.integers(1, 40),
    dtype=st.sampled_from([torch.bfloat16, torch.float16, torch.float32, torch.float64]),
    diff=st.booleans(),
    seed=st.integers(0, 10_000),
)
def test_blocked_operator_products_match_numpy(
    m: int, n: int, cols: int, block: int, dtype: torch.dtype, diff: bool, seed: int
) -> None:
    """Row-block products of a stored matrix (or a difference), upcast block by block."""
    from spectral_probe.spectral import BlockedOperator

    g = torch.Generator().manual_seed(seed)
    a = torch.randn(m, n, generator=g).to(dtype)
    other = torch.randn(m, n, generator=g).to(dtype) if diff else None
    op = BlockedOperator(a, torch.float64, minus=other, block_rows=block)
    ref = a.double().numpy() - (other.double().numpy() if other is not None else 0.0)
    x = np.random.default_rng(seed).standard_normal((n, cols))
    y = np.random.default_rng(seed + 1).standard_normal((m, cols))
    assert op.shape == (m, n) and op.dtype == torch.float64
    np.testing.assert_allclose(op.matmul(torch.from_numpy(x)).numpy(), ref @ x, atol=1e-12)
    np.testing.assert_allclose(op.rmatmul(torch.from_numpy(y)).numpy(), ref.T @ y, atol=1e-12)
    assert op.frobenius() == pytest.approx(np.linalg.norm(ref), rel=1e-12, abs=1e-300)
    single = BlockedOperator(a, torch.float32, minus=other, block_rows=block)
    assert single.matmul(torch.from_numpy(x)).dtype == torch.float32
    np.testing.assert_allclose(
        single.matmul(torch.from_numpy(x)).double().numpy(), ref @ x, rtol=1e-4, atol=1e-4
    )


def test_float32_range_with_float64_refinement_keeps_values_and_an_honest_bound() -> None:
    """The range found in float32 from bf16 blocks, the core and residuals in float64: sigma
    within 1e-6 relative of NumPy's on a decaying spectrum, and each within its bound."""
    from spectral_probe.spectral import BlockedOperator

    spectrum = np.concatenate([0.8 ** np.arange(40), np.full(60, 1e-3)])
    a = _matrix(300, 150, spectrum, seed=5).to(torch.bfloat16)  # as a weight is stored
    out = randomized_svd(
        BlockedOperator(a, torch.float32, block_rows=64),
        12,
        niter=4,
        refine=BlockedOperator(a, torch.float64, block_rows=64),
    )
    s_ref = np.linalg.svd(a.double().numpy(), compute_uv=False)[:12]
    assert out.S.dtype == torch.float64 and out.U.dtype == torch.float64
    np.testing.assert_allclose(out.S.numpy(), s_ref, rtol=1e-6)
    assert np.all(np.abs(out.S.numpy() - s_ref) <= out.bound.numpy() + 1e-15)
    *_, ref_bound = triplet_residuals(
        DenseOperator(a.double()), out.S, out.U, out.V
    )  # the bound is the float64 residual of the returned triplets
    torch.testing.assert_close(out.bound, ref_bound, rtol=1e-6, atol=1e-14)
    with pytest.raises(ConfigError, match="refine of shape"):
        randomized_svd(BlockedOperator(a), 3, refine=BlockedOperator(a[:-1], torch.float64))
