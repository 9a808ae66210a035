r"""LogME: the log maximum evidence of a Bayesian linear model on the features.

You, Liu, Wang, Long. *LogME: Practical Assessment of Pre-trained Models for Transfer
Learning*, ICML 2021; fixed-point algorithm of You et al., *Ranking and Tuning Pre-trained
Models: A New Paradigm for Exploiting Model Hubs*, JMLR 2022 (reference implementation:
``thuml/LogME``, ``LogME.py``, ``_fit_fixed_point``).

For each class :math:`c`, the one-hot target :math:`y_c \in \{0,1\}^N` is modelled as
:math:`y_c = F w + \varepsilon` with prior :math:`w \sim \mathcal{N}(0, \alpha^{-1} I_D)` and
noise :math:`\varepsilon \sim \mathcal{N}(0, \beta^{-1} I_N)`. With the SVD
:math:`F = U \operatorname{diag}(s) V^\top` (rank :math:`k`), :math:`\sigma_i = s_i^2`,
:math:`x = U^\top y_c` and :math:`t = \alpha/\beta`, the fixed point iterates

.. math::

    \gamma = \sum_i \frac{\sigma_i}{\sigma_i + t},\quad
    m^2 = \sum_i \frac{\sigma_i x_i^2}{(t+\sigma_i)^2},\quad
    r^2 = \sum_i \frac{x_i^2}{(1+\sigma_i/t)^2} + \lVert y_c\rVert^2 - \lVert x\rVert^2,\quad
    \alpha \leftarrow \frac{\gamma}{m^2 + 10^{-5}},\quad
    \beta \leftarrow \frac{N-\gamma}{r^2 + 10^{-5}}

(at most 11 times, until :math:`|t_{new} - t|/t \le 10^{-3}`), and the evidence per sample is

.. math::

    \mathcal{L}_c = \frac{1}{N}\Big(\frac{D}{2}\log\alpha + \frac{N}{2}\log\beta
    - \frac12 \sum_{i\le k} \log(\alpha + \beta\sigma_i) - \frac{\beta}{2} r^2
    - \frac{\alpha}{2} m^2 - \frac{N}{2}\log 2\pi\Big).

LogME is the mean of :math:`\mathcal{L}_c` over classes; higher is better. Here all classes
iterate together on one ``(k, C)`` array (each class stops updating when it converges, as in
the per-class loop of the reference), after **one** decomposition of the features. For
:math:`N > D` neither singular-vector matrix is formed:
:math:`x = \operatorname{diag}(s)^{-1} V^\top (F^\top Y)`, where :math:`F^\top Y` is the per-class
sum of the feature rows and :math:`\sigma, V^\top (F^\top Y)` come from
:func:`spectral_probe.spectral.eigh_coordinates` on :math:`F^\top F` (formed by the symmetric
product, :func:`spectral_probe.spectral.gram`). For :math:`N \le D`, :math:`x = U^\top Y` with
:math:`U` from :func:`spectral_probe.spectral.svd`. Singular values below ``rank_rtol``
:math:`s_1` are dropped (the numerical rank, like the reference's truncation for
:math:`N > D`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..spectral import eigh_coordinates, gram, svd
from ._check import features_and_labels, one_hot

__all__ = ["logme"]


def logme(
    features: Any, labels: Any, *, rank_rtol: float = 1e-6, max_iter: int = 11, tol: float = 1e-3
) -> float:
    """LogME of ``features`` for the classification ``labels`` (higher is better).

    Args:
        features: ``(N, D)`` array or tensor.
        labels: ``(N,)`` class labels (any values; at least two classes).
        rank_rtol: singular values :math:`\\le` ``rank_rtol`` :math:`s_1` are treated as zero.
        max_iter: fixed-point iterations at most (the reference: 11).
        tol: relative change of :math:`\\alpha/\\beta` that stops a class (the reference: 1e-3).

    Raises:
        DataError: see :func:`~spectral_probe.transferability._check.features_and_labels`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.arange(60) % 3
        >>> f = torch.randn(60, 8, generator=g) + 3 * torch.nn.functional.one_hot(y, 8)
        >>> logme(f, y) > logme(torch.randn(60, 8, generator=g), y)
        True
    """
    f, y, c = features_and_labels(features, labels)
    n, d = f.shape
    if n > d:
        class_sums = torch.zeros(c, d, dtype=f.dtype, device=f.device).index_add_(0, y, f)
        lam, coords = eigh_coordinates(gram(f, left=False), class_sums.mT)  # V^T (F^T Y)
        singular = lam.flip(0).clamp_min(0).sqrt()
        keep = singular > rank_rtol * singular[0]
        x = coords.flip(0)[keep] / singular[keep, None]  # U^T Y without forming U
    else:
        dec = svd(f, vectors="left")
        if dec.U is None:  # pragma: no cover - svd returns the vectors asked for
            raise RuntimeError("svd returned no singular vectors")
        singular = dec.S
        keep = singular > rank_rtol * singular[0]
        x = dec.U[:, keep].mT @ one_hot(y, c, f)
    s = singular[keep]
    sigma = (s**2)[:, None]  # (k, 1)
    x2 = x**2  # (k, C)
    counts = torch.bincount(y, minlength=c).to(f.dtype)  # ||y_c||^2
    res_x2 = counts - x2.sum(0)  # ||y_c||^2 - ||x||^2: the part outside the column space
    alpha = torch.ones(c, dtype=f.dtype, device=f.device)
    beta = torch.ones_like(alpha)
    m2 = torch.zeros_like(alpha)
    res2 = torch.zeros_like(alpha)
    active = torch.ones(c, dtype=torch.bool, device=f.device)
    for _ in range(max_iter):
        t = alpha / beta
        gamma = (sigma / (sigma + t)).sum(0)
        m2_new = (sigma * x2 / (t + sigma) ** 2).sum(0)
        res2_new = (x2 / (1 + sigma / t) ** 2).sum(0) + res_x2
        alpha_new = gamma / (m2_new + 1e-5)
        beta_new = (n - gamma) / (res2_new + 1e-5)
        alpha = torch.where(active, alpha_new, alpha)
        beta = torch.where(active, beta_new, beta)
        m2 = torch.where(active, m2_new, m2)
        res2 = torch.where(active, res2_new, res2)
        active = active & ((alpha_new / beta_new - t).abs() / t > tol)
        if not bool(active.any()):
            break
    evidence = (
        d / 2.0 * alpha.log()
        + n / 2.0 * beta.log()
        - 0.5 * torch.log(alpha + beta * sigma).sum(0)
        - beta / 2.0 * res2
        - alpha / 2.0 * m2
        - n / 2.0 * math.log(2 * math.pi)
    ) / n
    return float(evidence.mean())
