r"""Spectrum's signal-to-noise ratio of a weight matrix (Hartford et al., 2024).

Spectrum ranks the matrices of a model by how much of their spectrum stands above a noise
level estimated from the spectrum itself. With singular values :math:`s_1 \ge \dots \ge s_r`
of an :math:`n \times m` matrix and :math:`\beta = \min(n, m) / \max(n, m)`:

.. math::

    \hat\sigma = \frac{Q_{0.75}(s) - Q_{0.25}(s)}{1.349}, \qquad
    \tau = \hat\sigma\,(1 + \sqrt{\beta}), \qquad
    \mathrm{SNR} = \frac{1}{s_1}\,
        \frac{\sum_{s_i > \tau} s_i}{\sum_{s_i \le \tau} s_i}

The quantiles interpolate linearly (``torch.quantile``'s default). Two conventions of the
reference are kept so that its users find the same numbers: an empty noise set counts as 1
(the denominator), an empty signal set as 0; a zero noise sum gives :math:`+\infty`. A 1-D
weight (a norm's scale) is read as a :math:`1 \times n` matrix: its single singular value is
all signal, so its SNR is 1 (for a non-zero vector).

Reference: ``spectrum.py`` of cognitivecomputations/spectrum at commit
``0ed1756bc4a7920249860bcd0a32b551bcdf6d1f`` (``calculate_snr_for_layer``,
``estimate_sigma_with_full_iqr``, ``marchenko_pastur_threshold``). Spectrum takes the
singular values of the fp32 weights with ``torch.linalg.svdvals``; here they come from
:func:`~spectral_probe.spectral.singular_values` in float64 (the smaller Gram's
eigenvalues), which agrees to far better than the fp32 SVD does.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .svd import singular_values

__all__ = ["iqr_sigma", "spectrum_threshold", "spectrum_snr", "matrix_snr"]

#: The interquartile range of a standard normal distribution: IQR / 1.349 estimates its sigma.
_IQR_NORMAL = 1.349


def iqr_sigma(s: Tensor) -> float:
    r"""Spectrum's noise level :math:`(Q_{0.75}(s) - Q_{0.25}(s)) / 1.349` of singular values ``s``.

    Example:
        >>> round(iqr_sigma(torch.tensor([4.0, 3.0, 2.0, 1.0, 0.0])), 4)
        1.4826
    """
    if s.ndim != 1 or s.numel() == 0:
        raise ValueError(
            f"expected a non-empty 1-D tensor of singular values, found shape {tuple(s.shape)}"
        )
    s = s.to(torch.float64)
    q = torch.quantile(s, torch.tensor([0.25, 0.75], dtype=torch.float64, device=s.device))
    return float(q[1] - q[0]) / _IQR_NORMAL


def spectrum_threshold(sigma: float, rows: int, cols: int) -> float:
    r"""Spectrum's edge :math:`\hat\sigma (1 + \sqrt{\beta})`, :math:`\beta = \min/\max` of the shape.

    Example:
        >>> spectrum_threshold(2.0, 4, 16)
        3.0
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"expected a matrix shape of positive sides, found ({rows}, {cols})")
    beta = min(rows, cols) / max(rows, cols)
    return sigma * (1.0 + math.sqrt(beta))


def spectrum_snr(s: Tensor, rows: int, cols: int) -> float:
    r"""Spectrum's SNR of an ``rows x cols`` matrix with singular values ``s`` (any order).

    Args:
        s: the singular values, 1-D, non-negative.
        rows: rows of the matrix (only the aspect ratio enters, through the threshold).
        cols: columns of the matrix.

    Returns:
        signal sum / noise sum / :math:`s_1`, with an empty noise set counted as 1, an empty
        signal set as 0 and a zero noise sum as :math:`+\infty` (as the reference does).

    Example:
        >>> spectrum_snr(torch.tensor([8.0, 3.0, 2.0, 1.0, 0.0]), 5, 20)  # (8 + 3) / (2 + 1) / 8
        0.4583333333333333
    """
    s = s.to(torch.float64)
    tau = spectrum_threshold(iqr_sigma(s), rows, cols)
    signal_mask = s > tau
    signal = float(s[signal_mask].sum()) if bool(signal_mask.any()) else 0.0
    noise = float(s[~signal_mask].sum()) if bool((~signal_mask).any()) else 1.0
    ratio = signal / noise if noise != 0 else math.inf
    top = float(s.max())
    if top == 0:  # all-zero: no signal, zero noise sum, so +inf (the reference's inf / 0)
        return math.inf
    return ratio / top


def matrix_snr(w: Tensor) -> float:
    """Spectrum's SNR of a weight: a matrix, or a 1-D tensor read as one row.

    Example:
        >>> matrix_snr(torch.ones(8))  # one singular value: all signal
        1.0
    """
    if w.ndim == 1:
        w = w.unsqueeze(0)
    if w.ndim != 2:
        raise ValueError(f"expected a 1-D or 2-D weight, found shape {tuple(w.shape)}")
    rows, cols = w.shape
    return spectrum_snr(singular_values(w), rows, cols)
