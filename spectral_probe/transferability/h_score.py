r"""H-score: how much of the feature covariance the class-conditional means explain.

Bao, Li, Huang, Zheng, Wang, Zhang, Tong. *An Information-Theoretic Approach to
Transferability in Task Transfer Learning*, ICIP 2019 (reference: ``tllib/ranking/hscore.py``).

.. math::

    \mathcal{H}(f) = \operatorname{tr}\!\big(\operatorname{cov}(f)^{+}\,
    \operatorname{cov}(\mathbb{E}[f \mid y])\big),

with unbiased (``N - 1``) covariances and :math:`\operatorname{cov}(\mathbb{E}[f\mid y]) =
\frac{1}{N-1}\sum_c n_c (\mu_c - \mu)(\mu_c - \mu)^\top`. Higher is better. The
pseudo-inverse (:func:`spectral_probe.spectral.psd_pinv`) drops eigenvalues below
:math:`D\epsilon\lambda_{\max}`, so with more dimensions than samples the score stays finite
(the reference inverts the rounding noise there and returns arbitrary values).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..spectral import psd_pinv
from ._check import features_and_labels

__all__ = ["h_score", "between_class_factor"]


def between_class_factor(f: Tensor, y: Tensor, c: int, mean: Tensor) -> Tensor:
    r"""``M`` with :math:`M^\top M = \operatorname{cov}(\mathbb{E}[f \mid y])` (unbiased): ``(C, D)``."""
    n = f.shape[0]
    counts = torch.bincount(y, minlength=c).to(f.dtype)
    sums = torch.zeros(c, f.shape[1], dtype=f.dtype, device=f.device).index_add_(0, y, f)
    means = sums / counts[:, None]
    return (means - mean) * (counts / (n - 1)).sqrt()[:, None]


def h_score(features: Any, labels: Any) -> float:
    """H-score of ``features`` ``(N, D)`` for the class ``labels`` ``(N,)`` (higher is better).

    Raises:
        DataError: see :func:`~spectral_probe.transferability._check.features_and_labels`.

    Example:
        >>> f = torch.tensor([[0.0], [1.0], [4.0], [5.0]])
        >>> round(h_score(f, [0, 0, 1, 1]), 6)  # between / total variance: (16/3) / (17/3)
        0.941176
    """
    f, y, c = features_and_labels(features, labels)
    n = f.shape[0]
    mean = f.mean(0)
    centred = f - mean
    cov = centred.mT @ centred / (n - 1)
    m = between_class_factor(f, y, c, mean)
    return float(((m @ psd_pinv(cov)) * m).sum())
