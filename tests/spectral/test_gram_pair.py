"""compare_blocked: the Gram route from row blocks, against NumPy and compare_matrices."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.spectral import compare_matrices
from spectral_probe.spectral.gram_pair import compare_blocked, compare_grams, pair_grams


def _pair(m: int, n: int, seed: int, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(m, n, generator=g, dtype=torch.float64)
    return a, a + noise * torch.randn(m, n, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("shape", [(90, 40), (40, 90), (30, 30)])
@pytest.mark.parametrize("vectors", ["left", "right"])
def test_matches_numpy(shape: tuple[int, int], vectors: str) -> None:
    a, b = _pair(*shape, seed=1)
    got = compare_blocked(a.float(), b.float(), vectors=vectors, top_k=5, block_rows=7)  # type: ignore[arg-type]
    an, bn = a.float().double().numpy(), b.float().double().numpy()
    ua, sa, vat = np.linalg.svd(an, full_matrices=False)
    ub, sb, vbt = np.linalg.svd(bn, full_matrices=False)
    np.testing.assert_allclose(got.s_a.numpy(), sa, rtol=1e-10)
    np.testing.assert_allclose(got.s_b.numpy(), sb, rtol=1e-10)
    basis_a, basis_b = (ua, ub) if vectors == "left" else (vat.T, vbt.T)
    np.testing.assert_allclose(got.cos.numpy(), np.abs((basis_a * basis_b).sum(0)), atol=1e-8)
    assert got.e_norm == pytest.approx(np.linalg.norm(bn - an, 2), rel=1e-10)
    assert got.e_fro == pytest.approx(np.linalg.norm(bn - an), rel=1e-10)
    assert got.a_fro == pytest.approx(np.linalg.norm(an), rel=1e-12)
    k = 5
    qa, qb = basis_a[:, :k], basis_b[:, :k]
    np.testing.assert_allclose(
        got.principal.numpy()[:k], np.linalg.svd(qa.T @ qb, compute_uv=False), atol=1e-8
    )


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(2, 40),
    n=st.integers(2, 40),
    block=st.integers(1, 50),
    seed=st.integers(0, 10_000),
    vectors=st.sampled_from(["left", "right"]),
)
def test_equals_compare_matrices_whatever_the_blocks(
    m: int, n: int, block: int, seed: int, vectors: str
) -> None:
    a, b = _pair(m, n, seed)
    want = compare_matrices(a, b, vectors=vectors, top_k=3)  # type: ignore[arg-type]
    got = compare_blocked(a, b, vectors=vectors, top_k=3, block_rows=block)  # type: ignore[arg-type]
    for field in ("s_a", "s_b", "cos", "cos_window", "principal"):
        torch.testing.assert_close(
            getattr(got, field), getattr(want, field), rtol=1e-6, atol=1e-7, equal_nan=True
        )
    assert torch.equal(got.window, want.window)
    assert got.e_fro == pytest.approx(want.e_fro, rel=1e-9, abs=1e-12)


def test_rank_deficient_vectors_are_nan_as_in_compare_matrices() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(50, 3, generator=g, dtype=torch.float64) @ torch.randn(
        3, 20, generator=g, dtype=torch.float64
    )
    want = compare_matrices(a, a.clone(), vectors="left")
    got = compare_blocked(a, a.clone(), vectors="left", block_rows=16)
    assert torch.equal(got.cos.isnan(), want.cos.isnan()) and bool(got.cos[3:].isnan().all())
    torch.testing.assert_close(got.cos[:3], torch.ones(3, dtype=torch.float64))
    assert got.e_norm == 0 and got.e_fro == 0


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    block=st.integers(1, 50),
    seed=st.integers(0, 10_000),
    dtype=st.sampled_from([torch.bfloat16, torch.float16, torch.float32, torch.float64]),
)
def test_pair_grams_match_numpy(m: int, n: int, block: int, seed: int, dtype: torch.dtype) -> None:
    """The four Grams on the smaller side, accumulated in place from float64 blocks of any dtype."""
    a, b = (x.to(dtype) for x in _pair(m, n, seed))
    an, bn = a.double().numpy().copy(), b.double().numpy().copy()
    grams = pair_grams(a, b, block_rows=block)
    np.testing.assert_array_equal(a.double().numpy(), an)  # the inputs are left alone
    np.testing.assert_array_equal(b.double().numpy(), bn)
    if m < n:
        an, bn = an.T, bn.T
    assert grams.transposed == (m < n) and grams.rows == max(m, n)
    for got, want in (
        (grams.ga, an.T @ an),
        (grams.gb, bn.T @ bn),
        (grams.c, an.T @ bn),
        (grams.ge, (bn - an).T @ (bn - an)),
    ):
        assert got.dtype == torch.float64 and tuple(got.shape) == (min(m, n), min(m, n))
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="same 2-D shape"):
        pair_grams(a, b[:, :-1] if n > 1 else b[:-1])


def test_compare_grams_equals_compare_blocked_and_the_inputs_can_go() -> None:
    a, b = _pair(60, 25, seed=3)
    want = compare_blocked(a, b, vectors="left", top_k=4, block_rows=9)
    grams = pair_grams(a, b, block_rows=9)
    del a, b  # nothing of the matrices is needed any more
    got = compare_grams(grams, vectors="left", top_k=4)
    for field in ("s_a", "s_b", "cos", "sin_bound", "cos_window", "principal"):
        assert torch.equal(getattr(got, field), getattr(want, field)), field
    assert (got.e_norm, got.e_fro, got.a_fro) == (want.e_norm, want.e_fro, want.a_fro)
    with pytest.raises(ValueError, match="vectors"):
        compare_grams(grams, vectors="both")  # type: ignore[arg-type]
