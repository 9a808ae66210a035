r"""The orthogonal Procrustes distance between representations (Ding et al. 2021).

With the centred features scaled to unit Frobenius norm,
:math:`\hat X = X_c / \|X_c\|_F` (``N x p``) and :math:`\hat Y = Y_c / \|Y_c\|_F` (``N x q``),

.. math::

    d_{\text{Proc}}(X, Y) = \min_{Q^\top Q = I} \|\hat X Q - \hat Y\|_F^2
        = \|\hat X\|_F^2 + \|\hat Y\|_F^2 - 2\,\|\hat X^\top \hat Y\|_*
        = 2 - 2\,\|\hat X^\top \hat Y\|_* ,

where :math:`\|\cdot\|_*` is the nuclear norm (the sum of singular values; the narrower side
is padded with zero columns when the widths differ). It is a distance in ``[0, 2]``: 0 when
one side is an orthogonal transform of the other (up to translation and scale), and it is a
metric on representations, unlike CKA.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from ..spectral import nuclear_norm
from ._checks import centre, check_pair, check_spread

__all__ = ["procrustes", "procrustes_normalise"]


def procrustes_normalise(x: Tensor, name: str = "X") -> Tensor:
    """Centred features scaled to unit Frobenius norm (raises on constant features)."""
    xc = centre(x)
    total = float(xc.square().sum())
    check_spread(total, float(x.square().sum()), name)
    return xc / total**0.5


def procrustes(x: Any, y: Any) -> float:
    r"""Orthogonal Procrustes distance :math:`2 - 2\|\hat X^\top \hat Y\|_*` (module docstring).

    Raises:
        DegenerateFeaturesError: fewer than 2 samples or a side with every feature constant.

    Examples:
        >>> import torch
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
        >>> round(procrustes(x, 5 * x.flip(1) + 1), 12)
        0.0
    """
    xm, ym = check_pair(x, y, min_n=2)
    return _procrustes(procrustes_normalise(xm, "X"), procrustes_normalise(ym, "Y"))


def _procrustes(xn: Tensor, yn: Tensor) -> float:
    return max(0.0, 2.0 - 2.0 * float(nuclear_norm(xn.mT @ yn)))
