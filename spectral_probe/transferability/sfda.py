r"""SFDA: self-challenging Fisher discriminant analysis.

Shao, Zhao, Li, Gao, Feng, Luo. *Not All Models Are Equal: Predicting Model Transferability in
a Self-challenging Fisher Space*, ECCV 2022 (reference: ``TencentARC/SFDA``, ``metrics.py``:
``SFDA_Score`` with the ``SFDA`` class and ``utils.iterative_A``).

1. **Regularised Fisher space.** With class priors :math:`\pi_c`, class means :math:`\mu_c` and
   the within-class scatter :math:`S_w = \sum_c \pi_c \operatorname{cov}_c` (biased), the
   shrinkage is :math:`\lambda = \max(e^{-5 a}, 10^{-10})` where :math:`a` is the reference's
   estimate of the largest eigenvalue of :math:`S_w` (three power iterations from the row sums),
   and :math:`\tilde S_w = (1-\lambda) S_w + \lambda \frac{\operatorname{tr} S_w}{D} I`. The
   reference solves :math:`S_b w = \ell \tilde S_w w` and classifies with
   :math:`W W^\top`; all :math:`D` eigenvectors normalised to :math:`W^\top \tilde S_w W = I`
   give :math:`W W^\top = \tilde S_w^{-1}`, so the class probabilities are the LDA posterior

   .. math::

       p(c \mid x) = \operatorname{softmax}_c\big(x^\top \tilde S_w^{-1}\mu_c
       - \tfrac12 \mu_c^\top \tilde S_w^{-1}\mu_c + \log\pi_c\big),

   computed here with one Cholesky solve (:func:`spectral_probe.spectral.spd_solve`).
2. **Self-challenging ConfMix.** The probabilities are softened by a second softmax,
   :math:`q = \operatorname{softmax}(p)`, and each sample moves towards the mean of the other
   classes' means, :math:`\bar\mu_{\neg y} = \frac{1}{C-1}\sum_{c \ne y}\mu_c`:
   :math:`\tilde x = q_y(x)\, x + (1 - q_y(x))\, \bar\mu_{\neg y}`.
3. The score is the mean probability of the true class in the Fisher space refitted on the
   mixed features with the same :math:`\lambda`: :math:`\frac1N\sum_i p(y_i \mid \tilde x_i)`.

Higher is better; values lie in :math:`(0, 1)`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..spectral import spd_solve
from ._check import features_and_labels

__all__ = ["sfda"]


def _largest_eigenvalue_estimate(a: Tensor, iterations: int = 3) -> float:
    """The reference's ``iterative_A``: power iterations from the row sums, ``x^T A y``."""
    x = a.sum(1)
    v = x
    for _ in range(iterations):
        t = a @ x
        v = t / t.norm()
        t = a @ v
        x = t / t.norm()
    return float(x @ (a @ v))


def _fisher_probabilities(
    f: Tensor, y: Tensor, c: int, shrinkage: float | None
) -> tuple[Tensor, Tensor, float]:
    """LDA posteriors ``(N, C)`` in the shrunk Fisher space, the class means, the shrinkage."""
    n, d = f.shape
    counts = torch.bincount(y, minlength=c).to(f.dtype)
    means = torch.zeros(c, d, dtype=f.dtype, device=f.device).index_add_(0, y, f) / counts[:, None]
    resid = f - means[y]
    within = resid.mT @ resid / n  # sum_c prior_c * biased cov_c
    if shrinkage is None:
        shrinkage = max(math.exp(-5.0 * _largest_eigenvalue_estimate(within)), 1e-10)
    shrunk = (1.0 - shrinkage) * within
    shrunk.diagonal().add_(shrinkage * float(within.diagonal().sum()) / d)
    coef = spd_solve(shrunk, means.mT).mT  # (C, D): Sw^-1 mu_c
    intercept = -0.5 * (means * coef).sum(1) + (counts / n).log()
    return torch.softmax(f @ coef.mT + intercept, dim=1), means, shrinkage


def sfda(features: Any, labels: Any) -> float:
    """SFDA score of ``features`` ``(N, D)`` for ``labels`` ``(N,)`` (higher is better).

    Raises:
        DataError: see :func:`~spectral_probe.transferability._check.features_and_labels`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.arange(60) % 3
        >>> f = torch.randn(60, 8, generator=g) + 3 * torch.nn.functional.one_hot(y, 8)
        >>> sfda(f, y) > sfda(torch.randn(60, 8, generator=g), y)
        True
    """
    f, y, c = features_and_labels(features, labels)
    rows = torch.arange(len(y), device=f.device)
    probs, means, shrinkage = _fisher_probabilities(f, y, c, None)
    soft = torch.softmax(probs, dim=1)  # the reference softens the posteriors once more
    others = (means.sum(0) - means) / (c - 1)  # mean of the other classes' means, (C, D)
    q = soft[rows, y][:, None]
    mixed = q * f + (1 - q) * others[y]
    probs, _, _ = _fisher_probabilities(mixed, y, c, shrinkage)
    return float(probs[rows, y].mean())
