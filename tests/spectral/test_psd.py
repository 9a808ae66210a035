"""psd_pinv and spd_solve against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.spectral import psd_pinv, spd_solve


def _psd(d: int, rank: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((d, rank))
    return a @ a.T


@pytest.mark.parametrize(("d", "rank"), [(6, 6), (8, 3), (1, 1)])
def test_psd_pinv_matches_numpy(d: int, rank: int) -> None:
    a = _psd(d, rank, d + rank)
    ours = psd_pinv(torch.as_tensor(a)).numpy()
    np.testing.assert_allclose(
        ours, np.linalg.pinv(a, rcond=1e-10, hermitian=True), rtol=1e-8, atol=1e-10
    )


def test_psd_pinv_drops_rounding_noise_of_a_rank_deficient_matrix() -> None:
    a = torch.as_tensor(_psd(20, 4, 0))
    p = psd_pinv(a)
    assert torch.linalg.matrix_rank(p) == 4
    torch.testing.assert_close(a @ p @ a, a, rtol=1e-8, atol=1e-8)


def test_spd_solve_matches_numpy_and_falls_back_on_singular() -> None:
    a = _psd(5, 5, 1)
    b = np.random.default_rng(2).standard_normal((5, 3))
    np.testing.assert_allclose(
        spd_solve(torch.as_tensor(a), torch.as_tensor(b)).numpy(), np.linalg.solve(a, b), rtol=1e-8
    )
    singular = torch.as_tensor(_psd(5, 2, 3))
    x = spd_solve(singular, torch.as_tensor(b))
    torch.testing.assert_close(x, psd_pinv(singular) @ torch.as_tensor(b))


def test_non_square_is_an_error() -> None:
    with pytest.raises(ValueError, match="square"):
        psd_pinv(torch.ones(2, 3))
