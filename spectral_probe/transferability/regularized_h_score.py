r"""Regularized H-score: the H-score with a Ledoit-Wolf shrinkage covariance.

Ibrahim, Ponomareva, Mazumder. *Newer is not always better: Rethinking transferability
metrics, their peculiarities, stability and performance*, ECML-PKDD 2022 (reference:
``regularized_h_score`` of ``tllib/ranking/hscore.py``, which uses scikit-learn's
``LedoitWolf``).

With centred features :math:`X` (``N x D``), :math:`S = X^\top X / N`, :math:`\mu =
\operatorname{tr} S / D`, the Ledoit-Wolf shrinkage is

.. math::

    \alpha = \frac{\min(b, \delta)}{\delta},\quad
    b = \frac{1}{DN}\Big(\frac1N\sum_i \lVert x_i\rVert^4 - \lVert S\rVert_F^2\Big),\quad
    \delta = \frac1D \lVert S - \mu I\rVert_F^2

(:math:`\alpha = 0` when :math:`b = 0` or :math:`D = 1`), the shrunk covariance
:math:`\Sigma_\alpha = (1-\alpha) S + \alpha\mu I`, and

.. math::

    \mathcal{H}_\alpha(f) = \operatorname{tr}\!\big(\Sigma_\alpha^{+}\,(1-\alpha)\,
    \operatorname{cov}(\mathbb{E}[f \mid y])\big).

Higher is better. The shrinkage keeps the score stable when :math:`D` is close to or above
:math:`N`, where the plain H-score is dominated by noise.
"""

from __future__ import annotations

from typing import Any

import torch

from ..spectral import psd_pinv
from ._check import features_and_labels
from .h_score import between_class_factor

__all__ = ["regularized_h_score", "ledoit_wolf"]


def ledoit_wolf(centred: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Ledoit-Wolf shrunk covariance of centred data ``(N, D)`` and its shrinkage (scikit-learn's rule)."""
    n, d = centred.shape
    s = centred.mT @ centred / n
    mu = float(s.diagonal().sum()) / d
    if d == 1:
        return s, 0.0
    frob2 = float((s**2).sum())
    b = (float((centred.pow(2).sum(1) ** 2).sum()) / n - frob2) / (d * n)
    delta = (frob2 - d * mu**2) / d  # ||S - mu I||_F^2 / D, as tr S = D mu
    shrinkage = 0.0 if b == 0 or delta == 0 else min(b, delta) / delta
    shrunk = (1.0 - shrinkage) * s
    shrunk.diagonal().add_(shrinkage * mu)
    return shrunk, shrinkage


def regularized_h_score(features: Any, labels: Any) -> float:
    """Regularized H-score of ``features`` ``(N, D)`` for ``labels`` ``(N,)`` (higher is better).

    Raises:
        DataError: see :func:`~spectral_probe.transferability._check.features_and_labels`.

    Example:
        >>> f = torch.tensor([[0.0], [1.0], [4.0], [5.0]])
        >>> round(regularized_h_score(f, [0, 0, 1, 1]), 6)  # one feature: no shrinkage, (16/3) / (17/4)
        1.254902
    """
    f, y, c = features_and_labels(features, labels)
    mean = f.mean(0)
    centred = f - mean
    cov, shrinkage = ledoit_wolf(centred)
    m = between_class_factor(centred, y, c, torch.zeros_like(mean))
    return float((1.0 - shrinkage) * ((m @ psd_pinv(cov)) * m).sum())
