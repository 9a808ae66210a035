r"""Symmetric positive (semi-)definite matrices: pseudo-inverse and linear solves.

Covariance-based transferability scores (H-score, regularized H-score, SFDA) need
:math:`\Sigma^{+} B` or :math:`\Sigma^{-1} B` for a ``d x d`` covariance :math:`\Sigma`.
For a symmetric PSD matrix the pseudo-inverse comes from one eigendecomposition
:math:`\Sigma = V \Lambda V^\top`:

.. math::

    \Sigma^{+} = V \operatorname{diag}(\lambda_i^{+}) V^\top, \qquad
    \lambda_i^{+} = 1/\lambda_i \text{ if } \lambda_i > \text{rtol}\cdot\lambda_{\max}
    \text{ else } 0,

which equals NumPy's SVD-based ``pinv`` (singular values of a PSD matrix are its eigenvalues).
A positive definite matrix is solved through its Cholesky factor instead.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["psd_pinv", "spd_solve"]


def _check_square(a: Tensor) -> None:
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"expected a square 2-D matrix, found shape {tuple(a.shape)}")


def psd_pinv(a: Tensor, *, rtol: float | None = None) -> Tensor:
    r"""Pseudo-inverse of a symmetric positive semi-definite matrix, by ``eigh``.

    Args:
        a: a symmetric ``(d, d)`` matrix (only its lower triangle is read).
        rtol: eigenvalues :math:`\le` ``rtol`` :math:`\lambda_{\max}` count as zero; default
            :math:`d \cdot \epsilon` of the dtype (NumPy's ``matrix_rank`` rule), which discards
            the rounding noise of a rank-deficient covariance (e.g. more dimensions than
            samples) instead of inverting it.

    Returns:
        :math:`A^{+}`, same shape and dtype.

    Example:
        >>> psd_pinv(torch.diag(torch.tensor([4.0, 2.0, 0.0], dtype=torch.float64))).diag().tolist()
        [0.25, 0.5, 0.0]
    """
    _check_square(a)
    if a.numel() == 0:
        return a.clone()
    lam, v = torch.linalg.eigh(a)
    if rtol is None:
        rtol = a.shape[0] * torch.finfo(a.dtype).eps
    top = lam.abs().max()
    keep = lam > rtol * top
    inv = torch.where(
        keep, 1.0 / torch.where(keep, lam, torch.ones_like(lam)), torch.zeros_like(lam)
    )
    return (v * inv) @ v.mT


def spd_solve(a: Tensor, b: Tensor) -> Tensor:
    r"""Solve :math:`A X = B` for a symmetric positive definite :math:`A` (Cholesky).

    Falls back to :math:`A^{+} B` (:func:`psd_pinv`) when the Cholesky factorisation fails,
    i.e. when :math:`A` is only semi-definite in working precision.

    Args:
        a: a symmetric positive definite ``(d, d)`` matrix.
        b: right-hand sides ``(d, k)`` (or ``(d,)``).

    Example:
        >>> a = torch.tensor([[4.0, 0.0], [0.0, 16.0]], dtype=torch.float64)
        >>> spd_solve(a, torch.tensor([2.0, 4.0], dtype=torch.float64)).tolist()
        [0.5, 0.25]
    """
    _check_square(a)
    vector = b.ndim == 1
    rhs = b.unsqueeze(1) if vector else b
    chol, info = torch.linalg.cholesky_ex(a)
    x = torch.cholesky_solve(rhs, chol) if int(info) == 0 else psd_pinv(a) @ rhs
    return x.squeeze(1) if vector else x
