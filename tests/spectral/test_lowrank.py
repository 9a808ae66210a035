"""Spectra of LoRA updates from their factors against a dense NumPy SVD."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.errors import ConfigError
from spectral_probe.spectral import LowRankSum, factored_svd, top_singular


def _factors(m: int, r: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return (
        torch.randn(m, r, generator=gen, dtype=torch.float64),
        torch.randn(r, n, generator=gen, dtype=torch.float64),
    )


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 25),
    n=st.integers(1, 25),
    r=st.integers(1, 8),
    scale=st.floats(-4.0, 4.0).filter(lambda x: abs(x) > 1e-3),
    seed=st.integers(0, 1000),
)
def test_factored_equals_dense_svd(m: int, n: int, r: int, scale: float, seed: int) -> None:
    b, a = _factors(m, r, n, seed)
    dense = scale * (b @ a).numpy()
    ref = np.linalg.svd(dense, compute_uv=False)
    out = factored_svd(b, a, scale=scale, vectors="both")
    width = min(r, m, n)
    assert out.S.shape == (width,)
    np.testing.assert_allclose(out.S.numpy(), ref[:width], rtol=1e-9, atol=1e-12 * ref[0])
    assert np.all(ref[width:] <= 1e-12 * ref[0])
    u, v = out.U.numpy(), out.V.numpy()
    np.testing.assert_allclose(u @ np.diag(out.S.numpy()) @ v.T, dense, atol=1e-10 * ref[0])
    np.testing.assert_allclose(u.T @ u, np.eye(width), atol=1e-10)
    np.testing.assert_allclose(v.T @ v, np.eye(width), atol=1e-10)


def test_vectors_on_request_only() -> None:
    b, a = _factors(6, 2, 5)
    assert factored_svd(b, a).U is None
    out = factored_svd(b, a, vectors="left")
    assert out.U is not None and out.V is None
    assert factored_svd(b.float(), a.float()).S.dtype == torch.float64


def test_rank_one_analytic() -> None:
    u = torch.tensor([3.0, 4.0, 0.0]) / 5
    v = torch.tensor([0.0, 1.0, 0.0, 0.0])
    out = factored_svd(2 * u[:, None], 3 * v[None, :], scale=0.5, vectors="both")
    assert out.S.tolist() == pytest.approx([3.0])
    assert abs(float(out.U[:, 0] @ u.double())) == pytest.approx(1.0)
    assert abs(float(out.V[:, 0] @ v.double())) == pytest.approx(1.0)


def test_zero_and_wide_rank() -> None:
    out = factored_svd(torch.zeros(8, 4), torch.zeros(4, 6), vectors="both")
    assert torch.all(out.S == 0) and torch.isfinite(out.U).all() and torch.isfinite(out.V).all()
    # r larger than both sides: min(r, m, n) values
    b, a = _factors(3, 7, 5)
    s = factored_svd(b, a).S
    np.testing.assert_allclose(
        s.numpy(), np.linalg.svd((b @ a).numpy(), compute_uv=False), rtol=1e-10
    )


def test_bad_factors_one_line() -> None:
    with pytest.raises(ConfigError, match=r"B \(m, r\) and A \(r, n\).*\(4, 3\) and \(2, 5\)"):
        factored_svd(torch.zeros(4, 3), torch.zeros(2, 5))
    with pytest.raises(ConfigError, match=r"W0 of shape \(4, 5\)"):
        LowRankSum(torch.zeros(5, 4), torch.zeros(4, 2), torch.zeros(2, 5))


def test_operator_products_equal_dense() -> None:
    b, a = _factors(7, 2, 5)
    w0 = torch.randn(7, 5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    op = LowRankSum(w0, b, a, scale=0.25)
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    dense = w0 + 0.25 * b @ a
    torch.testing.assert_close(op.matmul(x), dense @ x)
    torch.testing.assert_close(op.rmatmul(y), dense.T @ y)
    torch.testing.assert_close(op.dense(), dense)
    alone = LowRankSum(None, b, a, scale=0.25)
    torch.testing.assert_close(alone.matmul(x), 0.25 * b @ a @ x)
    assert alone.shape == (7, 5)


def _decaying(m: int, n: int, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    r = min(m, n)
    u = np.linalg.qr(rng.standard_normal((m, r)))[0]
    v = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return torch.from_numpy(u @ np.diag(0.8 ** np.arange(r)) @ v.T)


@pytest.mark.parametrize("method", ["randomized", "dense", "auto"])
def test_top_singular_of_w0_plus_update(method: str) -> None:
    w0 = _decaying(160, 120, 0)
    b, a = _factors(160, 3, 120, 1)
    op = LowRankSum(w0, 0.05 * b, 0.05 * a, scale=2.0)
    ref = np.linalg.svd(op.dense().numpy(), compute_uv=False)
    out = top_singular(op, 6, method=method, niter=6)  # type: ignore[arg-type]
    np.testing.assert_allclose(out.S.numpy(), ref[:6], rtol=1e-8)
    assert float(out.bound.max()) < 1e-6
    with pytest.raises(ConfigError, match="found k = 121"):
        top_singular(op, 121)
    with pytest.raises(ConfigError, match="method"):
        top_singular(op, 2, method="lanczos")  # type: ignore[arg-type]
