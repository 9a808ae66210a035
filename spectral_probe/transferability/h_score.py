r"""H-score: how much of the feature covariance the class-conditional means explain.

Bao, Li, Huang, Zheng, Wang, Zhang, Tong. *An Information-Theoretic Approach to
Transferability in Task Transfer Learning*, ICIP 2019 (reference: ``tllib/ranking/hscore.py``).

.. math::

    \mathcal{H}(f) = \operatorname{tr}\!\big(\operatorname{cov}(f)^{+}\,
    \operatorname{cov}(\mathbb{E}[f \mid y])\big)
    = \sum_i \frac{N-1}{s_i^2}\,\lVert M v_i\rVert^2,

with unbiased (``N - 1``) covariances, :math:`\operatorname{cov}(\mathbb{E}[f\mid y]) =
M^\top M = \frac{1}{N-1}\sum_c n_c (\mu_c - \mu)(\mu_c - \mu)^\top`, and :math:`s_i, v_i` the
singular values and right vectors of the centred features (one decomposition,
:mod:`._centred`). Higher is better; at most :math:`C - 1`. The pseudo-inverse drops singular
values at the rounding-noise floor, so with more dimensions than samples the score stays
finite and meaningful (the reference's ``pinv(rcond=1e-15)`` inverts that noise there and
returns arbitrary values).
"""

from __future__ import annotations

from typing import Any

from ._centred import centred_spectrum
from ._check import features_and_labels

__all__ = ["h_score"]


def h_score(features: Any, labels: Any) -> float:
    """H-score of ``features`` ``(N, D)`` for the class ``labels`` ``(N,)`` (higher is better).

    Raises:
        DataError: see :func:`~spectral_probe.transferability._check.features_and_labels`.

    Example:
        >>> import torch
        >>> f = torch.tensor([[0.0], [1.0], [4.0], [5.0]])
        >>> round(h_score(f, [0, 0, 1, 1]), 6)  # between / total variance: (16/3) / (17/3)
        0.941176
    """
    f, y, c = features_and_labels(features, labels)
    spec = centred_spectrum(f, y, c)
    return float(((f.shape[0] - 1) / spec.s**2 * spec.projected).sum())
