"""spectral.angles: corresponding angles, principal angles, Wedin bounds, clusters."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.spectral import (
    corresponding_cosines,
    principal_cosines,
    svd,
    wedin_bounds,
    window_cosines,
)


def _rand(m: int, n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((m, n)))


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    return (
        torch.from_numpy(scipy.stats.ortho_group.rvs(n, random_state=seed))
        if n > 1
        else torch.ones(1, 1, dtype=torch.float64)
    )


def test_identical_matrices_give_cos_one():
    u = svd(_rand(6, 9, 0)).U
    np.testing.assert_allclose(corresponding_cosines(u, u).numpy(), 1.0)


def test_hand_computed_cosines():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 1.0], [1.0, -1.0]], dtype=torch.float64) / 2**0.5
    np.testing.assert_allclose(corresponding_cosines(a, b).numpy(), [2**-0.5, 2**-0.5])
    # unnormalised columns are normalised
    np.testing.assert_allclose(corresponding_cosines(a * 3, -b * 2).numpy(), [2**-0.5, 2**-0.5])


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 12), st.integers(0, 8), st.integers(0, 2**16))
def test_sign_flips_change_nothing(m, extra, seed):
    w = _rand(m, m + extra, seed)
    res = svd(w)
    signs = torch.from_numpy(
        np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=res.U.shape[1])
    )
    np.testing.assert_allclose(corresponding_cosines(res.U, res.U * signs).numpy(), 1.0)
    np.testing.assert_allclose(svd(-w).S.numpy(), res.S.numpy(), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 10), st.integers(0, 6), st.integers(0, 2**16))
def test_right_orthogonal_multiplication_keeps_left_vectors(m, extra, seed):
    n = m + extra
    w = _rand(m, n, seed)
    q = _orthogonal(n, seed % 2**31)
    ra, rb = svd(w), svd(w @ q)
    # the Gram method's eigenvalues lambda = s^2 carry an absolute error ~ eps * s_1^2, so a
    # small s_i moves by ~eps * s_1^2 / s_i (e.g. 4e-9 relative at s_1 / s_i = 6500)
    s2a, s2b = ra.S.numpy() ** 2, rb.S.numpy() ** 2
    np.testing.assert_allclose(s2b, s2a, rtol=1e-10, atol=1e-13 * s2a[0])
    if np.diff(ra.S.numpy()).__abs__().min() > 1e-6:
        np.testing.assert_allclose(corresponding_cosines(ra.U, rb.U).numpy(), 1.0, atol=1e-8)


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 20), st.integers(1, 3), st.integers(0, 2**16))
def test_principal_cosines_match_scipy(m, k, seed):
    k = min(k, m)
    a, b = _rand(m, k, seed), _rand(m, k, seed + 7)
    ref = np.cos(scipy.linalg.subspace_angles(a.numpy(), b.numpy()))
    got = principal_cosines(a, b).numpy()
    np.testing.assert_allclose(np.sort(got), np.sort(ref), atol=1e-10)


def test_principal_cosines_ignore_order_within_subspace():
    u = svd(_rand(8, 8, 3)).U
    perm = u[:, [2, 0, 1]]
    np.testing.assert_allclose(principal_cosines(u[:, :3], perm).numpy(), 1.0, atol=1e-12)
    assert corresponding_cosines(u[:, :3], perm).max() < 1e-9  # index matching sees no alignment


def test_wedin_bounds_hand_case():
    s_a = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    s_b = torch.tensor([3.1, 2.0, 0.9], dtype=torch.float64)
    got = wedin_bounds(s_a, s_b, 0.5)
    # delta_1 = min(|3.1-2|, |3.1-1|) = 1.1; delta_2 = min(1, 1) = 1; delta_3 = min(2.1, 1.1) = 1.1
    np.testing.assert_allclose(got.numpy(), [0.5 / 1.1, 0.5, 0.5 / 1.1])
    tall = wedin_bounds(s_a, s_b, 0.5, square=False)  # sigma_b_3 = 0.9 joins the minimum
    np.testing.assert_allclose(tall.numpy(), [0.5 / 1.1, 0.5, 0.5 / 0.9])
    assert wedin_bounds(s_a, s_a, 10.0).max() == 1.0


@settings(max_examples=30, deadline=None)
@given(st.integers(3, 15), st.integers(0, 5), st.floats(1e-4, 0.3), st.integers(0, 2**16))
def test_wedin_bound_holds(m, extra, scale, seed):
    """Property: the observed sin(theta_i) never exceeds the bound (Wedin's theorem)."""
    a = _rand(m, m + extra, seed)
    b = a + scale * _rand(m, m + extra, seed + 1)
    ra, rb = svd(a, vectors="both"), svd(b, vectors="both")
    e = np.linalg.norm((b - a).numpy(), 2)
    bound = wedin_bounds(ra.S, rb.S, e, square=extra == 0).numpy()
    cos = corresponding_cosines(ra.U, rb.U).numpy()
    sin = np.sqrt(np.clip(1 - cos**2, 0, None))
    assert np.all(sin <= bound + 1e-7)


def _window_reference(a, b, s_a, s_b, rtol):
    """Straightforward loop over indices (the definition, written out)."""
    m, r = a.shape
    out, sizes = [], []
    for i in range(r):
        near = [j for j in range(r) if abs(s_b[j] - s_a[i]) <= rtol * s_a[i]] + [i]
        lo, hi = min(near), max(near) + 1
        rho = sum(float(a[:, i] @ b[:, j]) ** 2 for j in range(lo, hi))
        k = hi - lo
        out.append(np.nan if k >= m else np.sqrt(max(0.0, (min(rho, 1.0) - k / m) / (1 - k / m))))
        sizes.append(k)
    return np.array(out), np.array(sizes)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(3, 40),
    st.integers(0, 10),
    st.floats(0.0, 0.5),
    st.floats(0.0, 0.3),
    st.integers(0, 2**16),
)
def test_window_cosines_match_their_definition(m, extra, scale, rtol, seed):
    a = _rand(m, m + extra, seed)
    b = a + scale * _rand(m, m + extra, seed + 1)
    ra, rb = svd(a), svd(b)
    got, sizes = window_cosines(ra.U, rb.U, ra.S, rb.S, rtol)
    ref, ref_sizes = _window_reference(ra.U.numpy(), rb.U.numpy(), ra.S.numpy(), rb.S.numpy(), rtol)
    np.testing.assert_array_equal(sizes.numpy(), ref_sizes)
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-10)


def test_window_recovers_rotation_among_near_equal_values():
    u = svd(_rand(6, 6, 5)).U
    c, s = np.cos(0.7), np.sin(0.7)
    rot = torch.eye(6, dtype=torch.float64)
    rot[1:3, 1:3] = torch.tensor([[c, -s], [s, c]])
    v = u @ rot  # vectors 1 and 2 rotated inside their plane
    cos = corresponding_cosines(u, v)
    assert cos[1] < 0.8 and cos[2] < 0.8
    s_a = torch.tensor([6.0, 3.0, 2.9, 2.0, 1.0, 0.5], dtype=torch.float64)
    got, sizes = window_cosines(u, v, s_a, s_a, 0.05)
    assert sizes.tolist() == [1, 2, 2, 1, 1, 1]
    np.testing.assert_allclose(got.numpy(), 1.0, atol=1e-12)
    narrow, _ = window_cosines(u, v, s_a, s_a, 0.0)  # index-matched, corrected for chance 1/6
    expected = np.sqrt(np.clip((cos.numpy() ** 2 - 1 / 6) / (1 - 1 / 6), 0, None))
    np.testing.assert_allclose(narrow.numpy(), expected, atol=1e-12)


def test_window_reads_zero_for_unrelated_bases_and_nan_for_the_whole_space():
    m = 200
    u, v = _orthogonal(m, 1), _orthogonal(m, 2)
    s = torch.linspace(2.0, 1.0, m, dtype=torch.float64)
    got, sizes = window_cosines(u, v, s, s, 0.05)
    assert got.mean() < 0.15 and got.max() < 0.5 and sizes.max() < m
    same, _ = window_cosines(u, u, s, s, 0.05)
    np.testing.assert_allclose(same.numpy(), 1.0, atol=1e-12)
    whole, _ = window_cosines(
        u, v, torch.ones(m, dtype=torch.float64), torch.ones(m, dtype=torch.float64), 0.05
    )
    assert torch.isnan(whole).all()
    with pytest.raises(ValueError, match="rtol"):
        window_cosines(u, v, s, s, -0.1)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="same number of rows"):
        corresponding_cosines(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="equal length"):
        wedin_bounds(torch.zeros(3), torch.zeros(2), 1.0)


def test_window_nan_vector_only_poisons_its_own_windows():
    """A rank-deficient layer has NaN vectors; other indices keep their values."""
    u = svd(_rand(6, 6, 7)).U
    v = u.clone()
    v[:, 5] = float("nan")
    s = torch.tensor([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    got, _ = window_cosines(u, v, s, s, 0.05)
    np.testing.assert_allclose(got[:5].numpy(), 1.0, atol=1e-12)
    assert torch.isnan(got[5])
