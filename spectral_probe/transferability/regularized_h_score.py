r"""Regularized H-score: the H-score with a Ledoit-Wolf shrinkage covariance.

Ibrahim, Ponomareva, Mazumder. *Newer is not always better: Rethinking transferability
metrics, their peculiarities, stability and performance*, ECML-PKDD 2022 (reference:
``regularized_h_score`` of ``tllib/ranking/hscore.py``, which uses scikit-learn's
``LedoitWolf``).

With centred features :math:`X` (``N x D``), :math:`S = X^\top X / N` (eigenvalues
:math:`\lambda_i = s_i^2/N`), :math:`\mu = \operatorname{tr} S / D`, the Ledoit-Wolf
shrinkage is

.. math::

    \alpha = \frac{\min(b, \delta)}{\delta},\quad
    b = \frac{1}{DN}\Big(\frac1N\sum_n \lVert x_n\rVert^4 - \lVert S\rVert_F^2\Big),\quad
    \delta = \frac1D \lVert S - \mu I\rVert_F^2 = \frac1D\Big(\sum_i\lambda_i^2 - D\mu^2\Big)

(:math:`\alpha = 0` when :math:`b = 0` or :math:`D = 1`), the shrunk covariance
:math:`\Sigma_\alpha = (1-\alpha) S + \alpha\mu I`, and

.. math::

    \mathcal{H}_\alpha(f) = \operatorname{tr}\!\big(\Sigma_\alpha^{+}\,(1-\alpha)\,
    \operatorname{cov}(\mathbb{E}[f \mid y])\big)
    = (1-\alpha)\sum_i \frac{\lVert M v_i\rVert^2}{(1-\alpha)\lambda_i + \alpha\mu},

from the one decomposition of :mod:`._centred` (the class-mean directions lie in the span of
the :math:`v_i`). Higher is better. The shrinkage keeps the score stable when :math:`D` is
close to or above :math:`N`, where the plain H-score is dominated by noise.
"""

from __future__ import annotations

from typing import Any

from ._centred import CentredSpectrum, centred_spectrum
from ._check import features_and_labels

__all__ = ["regularized_h_score", "ledoit_wolf_shrinkage"]


def ledoit_wolf_shrinkage(spec: CentredSpectrum, n: int, d: int) -> tuple[float, float]:
    """``(alpha, mu)``: scikit-learn's Ledoit-Wolf shrinkage and the target's scale, from the spectrum."""
    mu = spec.total / n / d
    if d == 1:
        return 0.0, mu
    frob2 = float(((spec.s**2 / n) ** 2).sum())  # ||S||_F^2 = sum of squared eigenvalues
    b = (float((spec.row_norms**2).sum()) / n - frob2) / (d * n)
    delta = (frob2 - d * mu**2) / d
    return (0.0 if b == 0 or delta <= 0 else min(b, delta) / delta), mu


def regularized_h_score(features: Any, labels: Any) -> float:
    """Regularized H-score of ``features`` ``(N, D)`` for ``labels`` ``(N,)`` (higher is better).

    Raises:
        DataError: see :func:`~spectral_probe.transferability._check.features_and_labels`.

    Example:
        >>> import torch
        >>> f = torch.tensor([[0.0], [1.0], [4.0], [5.0]])
        >>> round(regularized_h_score(f, [0, 0, 1, 1]), 6)  # one feature: no shrinkage, (16/3) / (17/4)
        1.254902
    """
    f, y, c = features_and_labels(features, labels)
    n, d = f.shape
    spec = centred_spectrum(f, y, c)
    alpha, mu = ledoit_wolf_shrinkage(spec, n, d)
    shrunk = (1.0 - alpha) * spec.s**2 / n + alpha * mu
    return float((1.0 - alpha) * (spec.projected / shrunk).sum())
