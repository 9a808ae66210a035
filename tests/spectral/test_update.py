"""Update-structure maths: factored and dense give the same numbers, both equal NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.errors import ConfigError
from spectral_probe.spectral import (
    LowRankSum,
    chance_subspace_energy,
    subspace_energy,
    update_frobenius,
    update_shape,
    update_singular_values,
)


def _case(m: int, n: int, r: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, r)), rng.standard_normal((r, n)), float(rng.uniform(0.1, 3.0))


def _numpy_energy(dw: np.ndarray, left: np.ndarray | None, right: np.ndarray | None) -> float:
    proj = dw if left is None else left.T @ dw
    proj = proj if right is None else proj @ right
    return float(np.sum(proj**2) / np.sum(dw**2))


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(2, 30),
    n=st.integers(2, 30),
    r=st.integers(1, 6),
    p=st.integers(1, 6),
    q=st.integers(1, 6),
    seed=st.integers(0, 10_000),
)
def test_factored_equals_dense_equals_numpy(
    m: int, n: int, r: int, p: int, q: int, seed: int
) -> None:
    b, a, s = _case(m, n, r, seed)
    dw = s * b @ a
    rng = np.random.default_rng(seed + 1)
    left = np.linalg.qr(rng.standard_normal((m, min(p, m))))[0]
    right = np.linalg.qr(rng.standard_normal((n, min(q, n))))[0]
    factored = LowRankSum(None, torch.from_numpy(b), torch.from_numpy(a), scale=s)
    dense = torch.from_numpy(dw)
    assert update_shape(factored) == update_shape(dense) == (m, n)
    ref_s = np.linalg.svd(dw, compute_uv=False)
    width = min(r, m, n)
    np.testing.assert_allclose(
        update_singular_values(factored).numpy(), ref_s[:width], rtol=1e-9, atol=1e-12 * ref_s[0]
    )
    np.testing.assert_allclose(
        update_singular_values(dense).numpy(), ref_s, rtol=1e-9, atol=1e-12 * ref_s[0]
    )
    assert update_frobenius(factored) == pytest.approx(np.linalg.norm(dw), rel=1e-10)
    assert update_frobenius(dense) == pytest.approx(np.linalg.norm(dw), rel=1e-12)
    for lb, rb in [(left, right), (left, None), (None, right), (None, None)]:
        ref = _numpy_energy(dw, lb, rb)
        lt = None if lb is None else torch.from_numpy(lb)
        rt = None if rb is None else torch.from_numpy(rb)
        assert subspace_energy(factored, lt, rt) == pytest.approx(ref, abs=1e-10)
        assert subspace_energy(dense, lt, rt) == pytest.approx(ref, abs=1e-12)


def test_analytic_principal_and_minor_updates() -> None:
    rng = np.random.default_rng(0)
    m, n, r = 20, 16, 3
    u0 = np.linalg.qr(rng.standard_normal((m, n)))[0]
    v0 = np.linalg.qr(rng.standard_normal((n, n)))[0]
    top_l, top_r = torch.from_numpy(u0[:, :r]), torch.from_numpy(v0[:, :r])
    bot_l, bot_r = torch.from_numpy(u0[:, -r:]), torch.from_numpy(v0[:, -r:])
    # PiSSA-like: B, A spanned by the top vectors -> all energy in the top subspace
    b = u0[:, :r] @ rng.standard_normal((r, r))
    a = rng.standard_normal((r, r)) @ v0[:, :r].T
    upd = LowRankSum(None, torch.from_numpy(b), torch.from_numpy(a))
    assert subspace_energy(upd, top_l, top_r) == pytest.approx(1.0)
    assert subspace_energy(upd, bot_l, bot_r) == pytest.approx(0.0, abs=1e-12)
    # MiLoRA-like: the minor subspace
    b = u0[:, -r:] @ rng.standard_normal((r, r))
    a = rng.standard_normal((r, r)) @ v0[:, -r:].T
    upd = LowRankSum(None, torch.from_numpy(b), torch.from_numpy(a))
    assert subspace_energy(upd, bot_l, bot_r) == pytest.approx(1.0)
    assert subspace_energy(upd, top_l) == pytest.approx(0.0, abs=1e-12)
    # rank 1 inside the top left space only: left share 1, two-sided share < 1
    x = u0[:, 0]
    y = rng.standard_normal(n)
    dense = torch.from_numpy(np.outer(x, y))
    assert subspace_energy(dense, top_l) == pytest.approx(1.0)
    assert subspace_energy(dense, top_l, top_r) == pytest.approx(
        np.sum((v0[:, :r].T @ y) ** 2) / (y @ y)
    )


def test_random_update_sits_at_chance() -> None:
    rng = np.random.default_rng(5)
    m, n, p = 400, 300, 40
    dw = torch.from_numpy(rng.standard_normal((m, n)))
    left = torch.from_numpy(np.linalg.qr(rng.standard_normal((m, p)))[0])
    right = torch.from_numpy(np.linalg.qr(rng.standard_normal((n, p)))[0])
    assert subspace_energy(dw, left, right) == pytest.approx(
        chance_subspace_energy((m, n), p, p), rel=0.15
    )
    assert subspace_energy(dw, left) == pytest.approx(
        chance_subspace_energy((m, n), p, None), rel=0.1
    )
    assert chance_subspace_energy((10, 10), None, None) == 1.0


def test_zero_update_and_bad_input() -> None:
    zero = LowRankSum(None, torch.zeros(5, 2), torch.zeros(2, 4))
    assert update_frobenius(zero) == 0.0
    assert subspace_energy(zero, torch.eye(5)[:, :2]) == 0.0
    assert subspace_energy(torch.zeros(5, 4), None, torch.eye(4)[:, :1]) == 0.0
    assert torch.all(update_singular_values(zero) == 0)
    with pytest.raises(ConfigError, match="left basis with 5 rows"):
        subspace_energy(torch.ones(5, 4), torch.eye(4))
    with pytest.raises(ConfigError, match="w0=None"):
        update_frobenius(LowRankSum(torch.zeros(5, 4), torch.zeros(5, 2), torch.zeros(2, 4)))
    with pytest.raises(ConfigError, match="2-D update"):
        update_singular_values(torch.zeros(3))
