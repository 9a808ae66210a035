r"""CCA-based similarities: SVCCA (Raghu et al. 2017) and PWCCA (Morcos et al. 2018).

Both start from canonical correlation analysis of the centred features :math:`X_c` (``N x p``)
and :math:`Y_c` (``N x q``): with orthonormal bases :math:`Q_x, Q_y` of their column spaces,
the canonical correlations :math:`\rho_1 \ge \dots \ge \rho_r` are the singular values of
:math:`Q_x^\top Q_y` (:func:`~spectral_probe.spectral.canonical_correlations`). They are
invariant to any invertible linear map of either side, which is also their weakness: once
:math:`N - 1 \le p + q` the two column spaces must intersect and many :math:`\rho_i` are 1
whatever the networks do. Use :math:`N` well above the widths (Kornblith et al. 2019, sec. 5).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from ..spectral import canonical_correlations, orthonormal_basis, svd
from ._checks import centre, check_pair, check_spread

__all__ = ["pwcca", "svcca", "svcca_basis"]


def _centred(x: Tensor, name: str) -> Tensor:
    xc = centre(x)
    check_spread(float(xc.square().sum()), float(x.square().sum()), name)
    return xc


def svcca_basis(xc: Tensor, keep: float = 0.99) -> Tensor:
    r"""Orthonormal basis of the top singular directions of centred features :math:`X_c`.

    With :math:`X_c = U \Sigma V^\top`, the basis is :math:`U_k`, the ``k`` leading left singular
    vectors: ``keep`` an int is ``k`` itself, a float in ``(0, 1]`` the smallest ``k`` with
    :math:`\sum_{i \le k} \sigma_i^2 \ge \text{keep} \sum_i \sigma_i^2`. Directions with
    :math:`\sigma_i` zero up to rounding are never kept. :math:`U_k` spans the reduced data
    :math:`X_c V_k = U_k \Sigma_k` that SVCCA feeds to CCA.
    """
    if isinstance(keep, bool) or not isinstance(keep, (int, float)):
        raise ConfigError(
            f"expected keep as a variance share in (0, 1] or a count >= 1, found {keep!r}"
        )
    if isinstance(keep, float) and not 0.0 < keep <= 1.0:
        raise ConfigError(
            f"expected keep as a variance share in (0, 1] or a count >= 1, found {keep!r}"
        )
    if isinstance(keep, int) and keep < 1:
        raise ConfigError(
            f"expected keep as a variance share in (0, 1] or a count >= 1, found {keep!r}"
        )
    q = orthonormal_basis(xc)  # the numerical rank r, and the directions by decreasing sigma
    rank = q.shape[1]
    if isinstance(keep, int):
        return q[:, : min(keep, rank)]
    s = svd(xc, vectors="none", method="svd").S[:rank]
    energy = s.square().cumsum(0)
    k = int(torch.searchsorted(energy, keep * float(energy[-1]) * (1 - 1e-12)).item()) + 1
    return q[:, : min(k, rank)]


def svcca(x: Any, y: Any, keep: float = 0.99) -> float:
    r"""SVCCA: the mean canonical correlation after an SVD reduction of each side.

    .. math::

        \operatorname{SVCCA}(X, Y) = \frac1r \sum_{i=1}^{r} \rho_i\big(U_{k_x}, U_{k_y}\big),
        \qquad r = \min(k_x, k_y),

    where :math:`U_k` are the leading left singular vectors of the centred features that hold
    a share ``keep`` of the variance (:func:`svcca_basis`; Raghu et al. keep 99%) and
    :math:`\rho_i` the canonical correlations of the two reduced sets. With ``keep=1.0`` it
    is invariant to invertible linear maps; with ``keep < 1`` the reduction is not.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, 1.0]])
        >>> round(svcca(x, x @ torch.tensor([[1.0, 2.0], [0.0, 1.0]]), keep=1.0), 12)
        1.0
    """
    xm, ym = check_pair(x, y, min_n=2)
    qx = svcca_basis(_centred(xm, "X"), keep)
    qy = svcca_basis(_centred(ym, "Y"), keep)
    rho = canonical_correlations(qx, qy)[0]
    return float(rho.mean())


def pwcca(x: Any, y: Any) -> float:
    r"""PWCCA: canonical correlations weighted by how much of the features they account for.

    With canonical variates :math:`h_i = Q_x a_i` (orthonormal, ``N``-vectors) on the side
    with fewer canonical directions (its rank; X on a tie), the weight of :math:`\rho_i` is
    its summed absolute projection onto that side's centred features :math:`x_j`:

    .. math::

        \alpha_i = \sum_{j=1}^{p} |\langle h_i, x_j \rangle|, \qquad
        \operatorname{PWCCA}(X, Y) = \frac{\sum_i \alpha_i \rho_i}{\sum_i \alpha_i}

    (Morcos et al. 2018; ``compute_pwcca`` of google/svcca, which takes the side with fewer
    neurons). Invariant to invertible linear maps of the other side; not symmetric in
    general.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0], [3.0, 1.0]])
        >>> round(pwcca(x, x @ torch.tensor([[1.0, 2.0], [0.0, 1.0]])), 12)
        1.0
    """
    xm, ym = check_pair(x, y, min_n=2)
    xc, yc = _centred(xm, "X"), _centred(ym, "Y")
    return _pwcca(xc, orthonormal_basis(xc), yc, orthonormal_basis(yc))


def _pwcca(xc: Tensor, qx: Tensor, yc: Tensor, qy: Tensor) -> float:
    """PWCCA from centred features and their orthonormal bases."""
    rho, a, b = canonical_correlations(qx, qy)
    if qx.shape[1] <= qy.shape[1]:
        h, feats = qx @ a, xc
    else:
        h, feats = qy @ b, yc
    alpha = (h.mT @ feats).abs().sum(1)
    return float((alpha * rho).sum() / alpha.sum())
