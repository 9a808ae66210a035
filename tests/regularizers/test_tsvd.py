"""TSVD against NumPy's truncated reconstruction, its rank and its gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.errors import ConfigError
from spectral_probe.regularizers import TSVD, truncate_spectrum


def numpy_truncation(f: torch.Tensor, r: int) -> np.ndarray:
    u, s, vt = np.linalg.svd(f.detach().double().numpy(), full_matrices=False)
    keep = f.shape[0] - r
    return (u[:, :keep] * s[:keep]) @ vt[:keep]


def well_separated(b: int, d: int, seed: int = 0) -> torch.Tensor:
    """A float64 matrix with singular values 1, 2, ..., b (clear gaps for gradcheck)."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(b, b, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, b, generator=g, dtype=torch.float64))
    s = torch.arange(1, b + 1, dtype=torch.float64)
    return (u * s) @ v.T


def test_hand_computed_diagonal() -> None:
    f = torch.diag(torch.tensor([3.0, 2.0, 1.0]))
    expected = torch.diag(torch.tensor([3.0, 2.0, 0.0]))
    torch.testing.assert_close(truncate_spectrum(f, 1), expected)


@pytest.mark.parametrize("r", [1, 2, 4, 8])
def test_rank_and_numpy_reconstruction(r: int) -> None:
    f = torch.relu(torch.randn(16, 64, generator=torch.Generator().manual_seed(r)) + 0.2)
    out = truncate_spectrum(f, r)
    assert out.dtype == f.dtype and out.shape == f.shape
    assert np.linalg.matrix_rank(out.double().numpy(), tol=1e-4) == 16 - r
    np.testing.assert_allclose(out.numpy(), numpy_truncation(f, r), atol=2e-5)


@settings(max_examples=25, deadline=None)
@given(b=st.integers(2, 10), d=st.integers(1, 12), r=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_property_matches_numpy(b: int, d: int, r: int, seed: int) -> None:
    f = torch.randn(b, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    if r >= b:
        with pytest.raises(ConfigError, match="tsvd.r"):
            truncate_spectrum(f, r)
        return
    s = np.linalg.svd(f.numpy(), compute_uv=False)
    full = np.concatenate([s, np.zeros(max(0, b - d))])
    if b - r - 1 < len(full) and b - r < len(full) and full[b - r - 1] - full[b - r] < 1e-6:
        return  # a tie at the cut: the truncation is not unique
    np.testing.assert_allclose(
        truncate_spectrum(f, r).numpy(),
        numpy_truncation(f, r) if b - r <= d else f.numpy(),
        atol=1e-9,
    )


@pytest.mark.parametrize(("shape", "r"), [((5, 8), 1), ((5, 8), 3), ((6, 4), 2)])
def test_gradcheck_float64(shape: tuple[int, int], r: int) -> None:
    f = well_separated(*shape).requires_grad_(True) if shape[0] <= shape[1] else None
    if f is None:
        f = well_separated(shape[1], shape[0]).T.contiguous().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: truncate_spectrum(x, r), (f,))


@pytest.mark.parametrize("case", ["duplicated-rows", "zero-rows", "tie-at-cut", "d<b"])
def test_finite_gradients_with_degenerate_spectra(case: str) -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(8, 16, generator=g)
    if case == "duplicated-rows":
        f[1] = f[0]
        f[2] = f[0]  # two zero singular values, removed together
    elif case == "zero-rows":
        f[4:] = 0  # four zero singular values, two removed and two kept
    elif case == "tie-at-cut":
        f = torch.diag(torch.tensor([4.0, 3.0, 2.0, 2.0])).repeat(1, 2)
    else:
        f = torch.randn(12, 3, generator=g)
    f.requires_grad_(True)
    out = truncate_spectrum(f, 2)
    (out * torch.randn(out.shape, generator=g)).sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(f.grad).all()


def test_module_transforms_only_in_training_mode() -> None:
    f = torch.randn(6, 10)
    reg = TSVD(r=2)
    assert not reg.has_penalty
    torch.testing.assert_close(reg.transform_features(f), truncate_spectrum(f, 2))
    reg.eval()
    assert reg.transform_features(f) is f
    with pytest.raises(ConfigError):
        TSVD(r=0)
