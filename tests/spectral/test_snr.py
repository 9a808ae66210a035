"""Spectrum's SNR against a NumPy transcription of the reference.

The reference is ``spectrum.py`` of cognitivecomputations/spectrum at commit
``0ed1756bc4a7920249860bcd0a32b551bcdf6d1f`` (``ModelModifier.calculate_snr_for_layer``,
``estimate_sigma_with_full_iqr``, ``marchenko_pastur_threshold``). :func:`reference_snr`
restates its steps one for one with NumPy instead of torch:

- a weight with ``ndim < 2`` is unsqueezed to one row;
- ``S = svdvals(W)``; ``sigma = (q75 - q25) / 1.349`` with linearly interpolated quantiles;
- ``beta = n / m if n < m else m / n``; ``threshold = sigma * sqrt((1 + sqrt(beta)) ** 2)``;
- ``signal = S[S > threshold].sum()`` or 0 when empty; ``noise = S[S <= threshold].sum()``
  or 1 when empty; ``snr = signal / noise`` or ``inf`` when ``noise == 0``;
- the score is ``snr / S[0]``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.spectral import iqr_sigma, matrix_snr, spectrum_snr, spectrum_threshold


def reference_snr(weights: np.ndarray) -> float:
    """Spectrum's ``calculate_snr_for_layer`` for one weight, in NumPy (float64)."""
    if weights.ndim < 2:
        weights = weights[None, :]
    S = np.linalg.svd(weights.astype(np.float64), compute_uv=False)
    max_singular_value = S[0]
    q75 = np.quantile(S, 0.75)
    q25 = np.quantile(S, 0.25)
    sigma_estimated = (q75 - q25) / 1.349
    n, m = weights.shape[-2:]
    beta = n / m if n < m else m / n
    mp_threshold = sigma_estimated * np.sqrt((1 + np.sqrt(beta)) ** 2)
    signal_mask = S > mp_threshold  # noqa: SIM300 (as the reference writes it)
    noise_mask = ~signal_mask
    signal = S[signal_mask].sum() if signal_mask.any() else 0.0
    noise = S[noise_mask].sum() if noise_mask.any() else 1.0
    snr = signal / noise if noise != 0 else float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(snr) / max_singular_value)


def _spiked(rows: int, cols: int, spikes: int, seed: int) -> np.ndarray:
    """Gaussian noise plus a few strong rank-one directions (a weight with some signal)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((rows, cols)) / math.sqrt(cols)
    for k in range(spikes):
        u, v = rng.standard_normal(rows), rng.standard_normal(cols)
        w += (4.0 + k) * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    return w


@pytest.mark.parametrize(
    ("rows", "cols", "spikes"), [(64, 64, 3), (48, 160, 5), (200, 40, 0), (1, 30, 0), (30, 1, 0)]
)
def test_matches_the_reference(rows, cols, spikes):
    w = _spiked(rows, cols, spikes, seed=rows * cols)
    assert matrix_snr(torch.from_numpy(w)) == pytest.approx(reference_snr(w), rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    spikes=st.integers(0, 4),
    seed=st.integers(0, 2**16),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.bfloat16]),
)
def test_property_matches_the_reference(rows, cols, spikes, seed, dtype):
    w = torch.from_numpy(_spiked(rows, cols, spikes, seed)).to(dtype)
    expected = reference_snr(w.double().numpy())
    assert matrix_snr(w) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_fp32_svdvals_as_spectrum_runs_it_agrees_to_1e4():
    """Spectrum's own arithmetic (fp32 weights, ``torch.linalg.svdvals``) against ours."""
    w = torch.from_numpy(_spiked(256, 704, 6, seed=7)).to(torch.bfloat16)
    sv = torch.linalg.svdvals(w.float())
    sigma = (torch.quantile(sv, 0.75) - torch.quantile(sv, 0.25)) / 1.349
    threshold = sigma * (1 + math.sqrt(256 / 704))
    snr = sv[sv > threshold].sum() / sv[sv <= threshold].sum() / sv[0]
    assert matrix_snr(w) == pytest.approx(float(snr), rel=1e-4)


def test_one_dimensional_weight_is_all_signal():
    """A norm's scale: one singular value above a zero threshold; empty noise counts as 1."""
    w = torch.rand(17) + 0.5
    assert matrix_snr(w) == pytest.approx(1.0)
    assert reference_snr(w.numpy()) == pytest.approx(1.0)


def test_empty_noise_set_counts_as_one():
    # the noise set is empty when every value lies above the threshold: s = (2, 2), IQR 0
    s = torch.tensor([2.0, 2.0])
    assert spectrum_snr(s, 2, 2) == pytest.approx((2 + 2) / 1 / 2)


def test_empty_signal_set_is_zero_and_zero_noise_is_infinite():
    # IQR 0 -> threshold 0: signal {1}, noise {0, 0, 0, 0} sums to 0 -> inf
    s = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
    assert spectrum_snr(s, 5, 5) == math.inf
    assert matrix_snr(torch.zeros(4, 6)) == math.inf
    assert reference_snr(np.zeros((4, 6))) == math.inf
    # a wide IQR: q25 = 0, q75 = 10 -> tau = 2 * 10 / 1.349 > 10: nothing above, SNR 0
    s = torch.tensor([10.0, 10.0, 10.0, 0.0, 0.0])
    assert spectrum_threshold(iqr_sigma(s), 5, 5) > 10
    assert spectrum_snr(s, 5, 5) == 0.0


def test_hand_computed_case():
    # s = (10, 1, 1, 1): q25 = 1, q75 = 1 + 0.25 * 9 = 3.25 -> tau = 2 * 2.25 / 1.349 = 3.34
    assert iqr_sigma(torch.tensor([10.0, 1.0, 1.0, 1.0])) == pytest.approx(2.25 / 1.349)
    assert spectrum_snr(torch.tensor([10.0, 1.0, 1.0, 1.0]), 4, 4) == pytest.approx(10 / 3 / 10)
    # s = (8, 3, 2, 1, 0): q25 = 1, q75 = 3 -> sigma 2/1.349; beta = 1/4 -> tau = 1.5 sigma
    tau = 2 / 1.349 * 1.5
    assert spectrum_threshold(2 / 1.349, 5, 20) == pytest.approx(tau)
    s = torch.tensor([8.0, 3.0, 2.0, 1.0, 0.0])
    assert spectrum_snr(s, 5, 20) == pytest.approx((8 + 3) / (2 + 1) / 8)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match="1-D or 2-D"):
        matrix_snr(torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        iqr_sigma(torch.ones(0))
    with pytest.raises(ValueError, match="positive sides"):
        spectrum_threshold(1.0, 0, 3)
