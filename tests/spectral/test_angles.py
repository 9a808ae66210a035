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
    cluster_cosines,
    corresponding_cosines,
    principal_cosines,
    spectral_clusters,
    svd,
    wedin_bounds,
)


def _rand(m: int, n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((m, n)))


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(scipy.stats.ortho_group.rvs(n, random_state=seed)) if n > 1 else torch.ones(1, 1, dtype=torch.float64)


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
    signs = torch.from_numpy(np.random.default_rng(seed + 1).choice([-1.0, 1.0], size=res.U.shape[1]))
    np.testing.assert_allclose(corresponding_cosines(res.U, res.U * signs).numpy(), 1.0)
    np.testing.assert_allclose(svd(-w).S.numpy(), res.S.numpy(), rtol=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 10), st.integers(0, 6), st.integers(0, 2**16))
def test_right_orthogonal_multiplication_keeps_left_vectors(m, extra, seed):
    n = m + extra
    w = _rand(m, n, seed)
    q = _orthogonal(n, seed % 2**31)
    ra, rb = svd(w), svd(w @ q)
    np.testing.assert_allclose(rb.S.numpy(), ra.S.numpy(), rtol=1e-10)
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


def test_spectral_clusters_merge_near_equal_values():
    s_a = torch.tensor([5.0, 3.0, 2.99, 2.98, 1.0], dtype=torch.float64)
    s_b = torch.tensor([5.0, 3.0, 2.5, 2.0, 0.5], dtype=torch.float64)
    labels = spectral_clusters(s_a, s_b, 0.05)
    assert labels.tolist() == [0, 1, 1, 1, 2]  # a's near-tie is enough
    assert spectral_clusters(s_a, s_b, 0.0).tolist() == [0, 1, 2, 3, 4]
    assert spectral_clusters(s_a[:0], s_b[:0], 1.0).numel() == 0


def test_cluster_cosines_recover_rotation_within_degenerate_pair():
    u = svd(_rand(6, 6, 5)).U
    c, s = np.cos(0.7), np.sin(0.7)
    rot = torch.eye(6, dtype=torch.float64)
    rot[1:3, 1:3] = torch.tensor([[c, -s], [s, c]])
    v = u @ rot  # vectors 1 and 2 rotated inside their plane
    cos = corresponding_cosines(u, v)
    assert cos[1] < 0.8 and cos[2] < 0.8
    labels = torch.tensor([0, 1, 1, 2, 3, 4])
    cc = cluster_cosines(u, v, labels)
    np.testing.assert_allclose(cc.numpy(), 1.0, atol=1e-12)
    singles = cluster_cosines(u, v, torch.arange(6))
    chance_corrected = np.sqrt(np.clip((cos.numpy() ** 2 - 1 / 6) / (1 - 1 / 6), 0, None))
    np.testing.assert_allclose(singles.numpy(), chance_corrected, atol=1e-12)


def test_cluster_cosines_read_zero_for_unrelated_subspaces_and_nan_for_the_whole_space():
    m = 200
    u, v = _orthogonal(m, 1), _orthogonal(m, 2)
    labels = torch.tensor([0] * 50 + [1] * 150)
    got = cluster_cosines(u, v, labels)
    assert got[:50].max() < 0.3 and got[50:].max() < 0.3
    whole = cluster_cosines(u, v, torch.zeros(m, dtype=torch.long))
    assert torch.isnan(whole).all()
    np.testing.assert_allclose(cluster_cosines(u, u, labels).numpy(), 1.0, atol=1e-12)


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError, match="same number of rows"):
        corresponding_cosines(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="equal length"):
        wedin_bounds(torch.zeros(3), torch.zeros(2), 1.0)
