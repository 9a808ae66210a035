"""compare_with_change: intruder cosines and update structure from the comparison's own decompositions, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.spectral import compare_matrices, compare_with_change


def _orth(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((rows, cols)))[0]


def _pair(m: int, n: int, seed: int, strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    r = min(m, n)
    w0 = _orth(m, r, rng) @ np.diag(np.linspace(3.0, 0.1, r)) @ _orth(n, r, rng).T
    b = _orth(m, 3, rng) * np.array([strength, strength / 2, strength / 3])
    a = _orth(n, 3, rng).T
    return w0, b, a


def _numpy_max_cos(w0: np.ndarray, w: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    u0, _, v0t = np.linalg.svd(w0, full_matrices=False)
    u, _, vt = np.linalg.svd(w, full_matrices=False)
    left = np.abs(u[:, :k].T @ u0).max(axis=1)
    right = np.abs(vt[:k] @ v0t.T).max(axis=1)
    return left, right


def _numpy_energy(w0: np.ndarray, dw: np.ndarray, r: int) -> dict[str, float]:
    u0, _, v0t = np.linalg.svd(w0, full_matrices=False)
    v0 = v0t.T
    total = np.sum(dw**2)
    t_u, t_v, b_u, b_v = u0[:, :r], v0[:, :r], u0[:, -r:], v0[:, -r:]
    return {
        "top": np.sum((t_u.T @ dw @ t_v) ** 2) / total,
        "bottom": np.sum((b_u.T @ dw @ b_v) ** 2) / total,
        "top_left": np.sum((t_u.T @ dw) ** 2) / total,
        "top_right": np.sum((dw @ t_v) ** 2) / total,
        "bottom_left": np.sum((b_u.T @ dw) ** 2) / total,
        "bottom_right": np.sum((dw @ b_v) ** 2) / total,
    }


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(6, 30),
    n=st.integers(6, 30),
    seed=st.integers(0, 10_000),
    strength=st.floats(0.5, 6.0),
    vectors=st.sampled_from(["left", "right"]),
    route=st.sampled_from(["gram", "svd", "blocked"]),
    factored=st.booleans(),
)
def test_matches_numpy(
    m: int, n: int, seed: int, strength: float, vectors: str, route: str, factored: bool
) -> None:
    w0, b, a = _pair(m, n, seed, strength)
    w = w0 + b @ a
    k, r = min(10, m, n), min(4, m, n)
    cmp, change = compare_with_change(
        torch.tensor(w0),
        torch.tensor(w),
        vectors=vectors,  # type: ignore[arg-type]
        method="svd" if route == "svd" else "gram",
        blocked=route == "blocked",
        block_rows=5,
        intruder_k=10,
        subspace_rank=4,
        factors=(torch.tensor(b), torch.tensor(a), 1.0) if factored else None,
    )
    plain = compare_matrices(torch.tensor(w0), torch.tensor(w), vectors=vectors)  # type: ignore[arg-type]
    torch.testing.assert_close(cmp.cos, plain.cos, atol=1e-6, rtol=0)
    left, right = _numpy_max_cos(w0, w, k)
    np.testing.assert_allclose(change.max_cos_left.numpy(), left, atol=1e-6)
    np.testing.assert_allclose(change.max_cos_right.numpy(), right, atol=1e-6)
    np.testing.assert_allclose(
        change.sigma.numpy(), np.linalg.svd(w, compute_uv=False)[:k], rtol=1e-9
    )
    dw = b @ a
    s_dw = np.linalg.svd(dw, compute_uv=False)
    got = change.update_s.numpy()
    np.testing.assert_allclose(got[:3], s_dw[:3], rtol=1e-6)
    np.testing.assert_allclose(got[3:], 0.0, atol=1e-6 * s_dw[0])
    assert change.update_fro == pytest.approx(np.linalg.norm(dw), rel=1e-9)
    want = _numpy_energy(w0, dw, r)
    for name, value in want.items():
        assert change.energy[name] == pytest.approx(value, abs=1e-7), name


def test_zero_update_and_k_beyond_rank() -> None:
    w0 = torch.diag(torch.tensor([3.0, 2.0, 1.0])).double()
    for blocked in (False, True):
        _, change = compare_with_change(
            w0, w0.clone(), intruder_k=10, subspace_rank=8, blocked=blocked
        )
        assert change.max_cos_left.tolist() == [1.0, 1.0, 1.0]  # k capped at min(m, n)
        assert change.energy == dict.fromkeys(change.energy, 0.0)
        assert change.update_fro == 0.0
        assert change.subspace_rank == 3


def test_rank_deficient_base_counts_no_undefined_vector() -> None:
    """A rank-1 W0: its undefined vectors are left out, W's undefined ones get NaN (never intruders)."""
    w0 = torch.zeros(4, 5, dtype=torch.float64)
    w0[0, 0] = 2.0
    w = w0.clone()
    w[1, 1] = 1.0  # a new direction, orthogonal to W0's only one
    for blocked in (False, True):
        _, change = compare_with_change(w0, w, intruder_k=4, blocked=blocked)
        c = change.max_cos_left
        assert c[0] == pytest.approx(1.0) and c[1] == pytest.approx(0.0, abs=1e-12)
        assert torch.isnan(c[2:]).all()
