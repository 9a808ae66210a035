"""spectral.svd against numpy.linalg.svd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.spectral import singular_values, spectral_norm, svd, svd_flip

shapes = st.tuples(st.integers(1, 40), st.integers(1, 40))


def _rand(m: int, n: int, seed: int) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal((m, n)))


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**16), st.sampled_from(["gram", "svd"]))
def test_singular_values_match_numpy(shape, seed, method):
    w = _rand(*shape, seed)
    ref = np.linalg.svd(w.numpy(), compute_uv=False)
    got = svd(w, vectors="none", method=method).S.numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12 * ref[0])


@settings(max_examples=40, deadline=None)
@given(shapes, st.integers(0, 2**16), st.sampled_from(["gram", "svd"]))
def test_vectors_match_numpy_up_to_sign(shape, seed, method):
    w = _rand(*shape, seed)
    u_ref, s_ref, vh_ref = np.linalg.svd(w.numpy(), full_matrices=False)
    res = svd(w, vectors="both", method=method)
    # Gaussian matrices have simple spectra almost surely; guard the rare near-tie anyway.
    gaps = np.abs(np.diff(s_ref))
    if gaps.size and gaps.min() < 1e-6:
        return
    np.testing.assert_allclose(np.abs((res.U.numpy() * u_ref).sum(0)), 1.0, atol=1e-8)
    np.testing.assert_allclose(np.abs((res.V.numpy() * vh_ref.T).sum(0)), 1.0, atol=1e-8)
    recon = res.U @ torch.diag(res.S) @ res.V.mT
    np.testing.assert_allclose(recon.numpy(), w.numpy(), atol=1e-10)


def test_descending_and_requested_vectors_only():
    w = _rand(7, 12, 0)
    res = svd(w, vectors="left")
    assert res.V is None and res.U is not None
    assert torch.all(res.S[:-1] >= res.S[1:])
    assert svd(w, vectors="right").U is None


def test_rank_deficient_other_side_vectors_are_nan():
    w = _rand(10, 3, 1) @ _rand(3, 6, 2)  # rank 3, wide (10 x 6 is tall)
    res = svd(w, vectors="left")  # tall: U is completed through V / sigma
    assert torch.isfinite(res.U[:, :3]).all()
    assert torch.isnan(res.U[:, 3:]).all()
    np.testing.assert_allclose(res.S[3:].numpy(), 0.0, atol=1e-6)


def test_float32_input_is_computed_in_float64():
    w = _rand(5, 9, 3).float()
    assert svd(w).S.dtype == torch.float64
    assert singular_values(w).dtype == torch.float64


def test_rejects_non_matrix():
    with pytest.raises(ValueError, match="2-D"):
        svd(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="method"):
        svd(torch.zeros(2, 3), method="qr")  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(shapes, st.integers(0, 2**16), st.sampled_from([0, 256]))
def test_spectral_norm_matches_numpy(shape, seed, exact_upto):
    w = _rand(*shape, seed)
    ref = np.linalg.norm(w.numpy(), 2)
    got = float(spectral_norm(w, exact_upto=exact_upto))  # 0: always Lanczos
    assert got <= ref * (1 + 1e-12)  # a Ritz value never exceeds the norm
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_spectral_norm_exact_path_in_float32():
    w = _rand(64, 576, 5)
    ref = np.linalg.norm(w.numpy(), 2)
    np.testing.assert_allclose(float(spectral_norm(w.float())), ref, rtol=1e-5)
    np.testing.assert_allclose(float(spectral_norm(w.float(), exact_upto=0)), ref, rtol=1e-4)


def test_spectral_norm_of_large_flat_spectrum_and_zero():
    w = _rand(300, 700, 4)
    np.testing.assert_allclose(float(spectral_norm(w)), np.linalg.norm(w.numpy(), 2), rtol=1e-5)
    assert float(spectral_norm(torch.zeros(4, 6, dtype=torch.float64))) == 0.0


def test_svd_flip_makes_largest_entry_positive():
    u = torch.tensor([[0.1, -0.9], [-0.8, 0.2]], dtype=torch.float64)
    flipped = svd_flip(u)
    assert flipped[1, 0] > 0 and flipped[0, 1] > 0
    assert torch.allclose(flipped.abs(), u.abs())
