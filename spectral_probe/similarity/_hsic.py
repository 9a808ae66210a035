r"""HSIC estimators for linear and kernel CKA, from Gram matrices or from feature moments.

With Gram matrices :math:`K, L` (``N x N``) and :math:`H = I - \tfrac1N \mathbf 1 \mathbf 1^\top`,

* the plain (biased) estimator, up to the factor :math:`(N-1)^{-2}` that cancels in CKA:

  .. math:: \operatorname{HSIC}(K, L) = \operatorname{tr}(K H L H) = \langle H K H, H L H \rangle_F;

* the unbiased estimator of Song et al. (2012), used by debiased CKA (Nguyen et al. 2021):
  with :math:`\tilde K, \tilde L` the Grams with their diagonals set to zero,

  .. math::

      \operatorname{HSIC}_u(K, L) = \frac{1}{N(N-3)} \Big[ \operatorname{tr}(\tilde K \tilde L)
      + \frac{\mathbf 1^\top \tilde K \mathbf 1 \; \mathbf 1^\top \tilde L \mathbf 1}{(N-1)(N-2)}
      - \frac{2}{N-2} \mathbf 1^\top \tilde K \tilde L \mathbf 1 \Big].

For linear kernels :math:`K = X X^\top`, :math:`L = Y Y^\top` every term is a function of
feature-space moments (with :math:`k_i = \|x_i\|^2`, :math:`l_i = \|y_i\|^2`, :math:`s_x = X^\top
\mathbf 1`, :math:`s_y = Y^\top \mathbf 1`, :math:`C = X^\top Y`):

.. math::

    \operatorname{tr}(\tilde K \tilde L) = \|C\|_F^2 - \textstyle\sum_i k_i l_i, \qquad
    \mathbf 1^\top \tilde K \mathbf 1 = \|s_x\|^2 - \textstyle\sum_i k_i,

    \mathbf 1^\top \tilde K \tilde L \mathbf 1 = s_x^\top C s_y - s_x^\top X^\top l
        - s_y^\top Y^\top k + \textstyle\sum_i k_i l_i,

and the plain one is :math:`\|X_c^\top Y_c\|_F^2` with :math:`X_c^\top Y_c = C - s_x s_y^\top / N`.
So :math:`X^\top X`, :math:`Y^\top Y`, :math:`X^\top Y`, the sums :math:`s`, :math:`X^\top l`,
:math:`Y^\top k`, :math:`\sum k_i l_i` and :math:`N` are enough: memory
:math:`O((p + q)^2)` whatever :math:`N`. :math:`\operatorname{HSIC}_u` is invariant to translating
the features (it estimates :math:`\|\operatorname{Cov}(x, y)\|_F^2`), so the moments may be taken
about any reference point; :class:`~spectral_probe.similarity.StreamingCKA` uses the first
batch's mean, which keeps the float64 sums free of cancellation.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["cka_ratio", "hsic_gram", "hsic_moments"]


def hsic_gram(k: Tensor, l: Tensor, *, debiased: bool) -> float:
    """HSIC of two ``N x N`` Gram matrices (see the module docstring), in float64."""
    n = k.shape[0]
    k, l = k.to(torch.float64), l.to(torch.float64)
    if not debiased:
        kc = k - k.mean(0, keepdim=True)
        kc = kc - kc.mean(1, keepdim=True)
        lc = l - l.mean(0, keepdim=True)
        lc = lc - lc.mean(1, keepdim=True)
        return float((kc * lc).sum())
    kt = k - torch.diag(torch.diagonal(k))
    lt = l - torch.diag(torch.diagonal(l))
    k1, l1 = kt.sum(1), lt.sum(1)
    t1 = float((kt * lt).sum())
    t2 = float(k1.sum()) * float(l1.sum())
    t3 = float(k1 @ l1)
    return (t1 + t2 / ((n - 1) * (n - 2)) - 2.0 * t3 / (n - 2)) / (n * (n - 3))


def hsic_moments(
    c: Tensor,
    sx: Tensor,
    sy: Tensor,
    tx: float,
    ty: float,
    u: Tensor,
    v: Tensor,
    g: float,
    n: int,
    *,
    debiased: bool,
) -> float:
    r"""HSIC of linear kernels from feature moments (see the module docstring).

    Args:
        c: :math:`X^\top Y` ``(p, q)``.
        sx: column sums :math:`X^\top \mathbf 1`.
        sy: column sums :math:`Y^\top \mathbf 1`.
        tx: :math:`\sum_i k_i = \operatorname{tr}(X^\top X)`.
        ty: :math:`\sum_i l_i`.
        u: :math:`X^\top l` ``(p,)``.
        v: :math:`Y^\top k` ``(q,)``.
        g: :math:`\sum_i k_i l_i`.
        n: number of samples.
        debiased: the unbiased estimator instead of the plain one.
    """
    if not debiased:
        return float((c - torch.outer(sx, sy) / n).square().sum())
    t1 = float(c.square().sum()) - g
    t2 = (float(sx @ sx) - tx) * (float(sy @ sy) - ty)
    t3 = float(sx @ (c @ sy)) - float(sx @ u) - float(sy @ v) + g
    return (t1 + t2 / ((n - 1) * (n - 2)) - 2.0 * t3 / (n - 2)) / (n * (n - 3))


def cka_ratio(xy: float, xx: float, yy: float) -> float:
    r""":math:`\operatorname{HSIC}(K, L) / \sqrt{\operatorname{HSIC}(K, K)\,\operatorname{HSIC}(L, L)}`.

    NaN when a self-term is not positive (the unbiased estimator can be, on tiny samples).
    """
    if not (xx > 0.0 and yy > 0.0):
        return math.nan
    return xy / math.sqrt(xx * yy)
