"""blocked_singular_values against NumPy's SVD, over shapes, dtypes and block sizes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.spectral import blocked_singular_values, singular_values


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 30),
    cols=st.integers(1, 30),
    block=st.integers(1, 40),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16, torch.float16]),
)
def test_matches_numpy(rows, cols, block, seed, dtype):
    w = torch.from_numpy(np.random.default_rng(seed).standard_normal((rows, cols))).to(dtype)
    got = blocked_singular_values(w, block=block)
    ref = np.linalg.svd(w.double().numpy(), compute_uv=False)
    assert got.dtype == torch.float64 and got.shape == (min(rows, cols),)
    # the Gram route: absolute error about eps * s_1 (the square root of eps * s_1^2)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10, atol=1e-7 * ref[0])


def test_equals_singular_values_and_checks_input():
    w = torch.randn(70, 150, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    np.testing.assert_allclose(blocked_singular_values(w, block=32), singular_values(w), rtol=1e-12)
    with pytest.raises(ValueError, match="2-D"):
        blocked_singular_values(torch.ones(3))
    with pytest.raises(ValueError, match="block >= 1"):
        blocked_singular_values(torch.ones(2, 2), block=0)
