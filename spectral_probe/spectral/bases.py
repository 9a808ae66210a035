r"""Orthonormal bases, nuclear norms and canonical correlations (LAPACK SVD, float64).

These serve the representation-similarity metrics (:mod:`spectral_probe.similarity`), whose
values depend on *every* singular value, small ones included: there the Gram route of
:func:`~spectral_probe.spectral.svd` (error :math:`\epsilon\sigma_1^2/\sigma_i`) is too coarse
and LAPACK's SVD (error :math:`\epsilon\sigma_1`) is used instead.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from .svd import svd

__all__ = ["canonical_correlations", "nuclear_norm", "orthonormal_basis"]


def _matrix(w: Tensor) -> Tensor:
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, found shape {tuple(w.shape)}")
    return w.to(torch.float64)


def orthonormal_basis(w: Tensor, *, rtol: float | None = None) -> Tensor:
    r"""An orthonormal basis of the column space of ``w``, rank-revealing.

    With the thin SVD :math:`W = U \Sigma V^\top` (``m x n``), the basis is the columns
    :math:`u_i` with :math:`\sigma_i > \text{rtol}\,\sigma_1`; ``rtol`` defaults to
    :math:`\max(m, n)\,\epsilon` (NumPy's ``matrix_rank`` rule), so directions that are zero up
    to rounding are dropped. A zero matrix has an empty basis ``(m, 0)``.

    Args:
        w: a 2-D tensor ``(m, n)``.
        rtol: relative threshold on the singular values.

    Returns:
        ``(m, r)`` float64 with orthonormal columns, ``r`` the numerical rank.

    Examples:
        >>> orthonormal_basis(torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]])).shape
        torch.Size([3, 1])
    """
    w = _matrix(w)
    m, n = w.shape
    if w.numel() == 0:
        return w.new_zeros(m, 0)
    res = svd(w, vectors="left", method="svd")
    u = cast(Tensor, res.U)  # requested above
    tol = (max(m, n) * torch.finfo(torch.float64).eps) if rtol is None else float(rtol)
    threshold = tol * res.S[0]
    keep = torch.gt(res.S, threshold)
    if not bool(res.S[0] > 0):
        keep = torch.zeros_like(keep)
    return u[:, keep]


def nuclear_norm(w: Tensor) -> Tensor:
    r"""The nuclear (trace) norm :math:`\|W\|_* = \sum_i \sigma_i(W)`, in float64.

    Examples:
        >>> float(nuclear_norm(torch.diag(torch.tensor([3.0, -2.0]))))
        5.0
    """
    w = _matrix(w)
    if w.numel() == 0:
        return w.new_zeros(())
    return svd(w, vectors="none", method="svd").S.sum()


def canonical_correlations(qx: Tensor, qy: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r"""Canonical correlations of two column spaces given by orthonormal bases.

    With :math:`Q_x` (``N x r_x``) and :math:`Q_y` (``N x r_y``) orthonormal bases of the
    centred data, the SVD :math:`Q_x^\top Q_y = A \operatorname{diag}(\rho) B^\top` gives the
    canonical correlations :math:`1 \ge \rho_1 \ge \dots \ge \rho_r \ge 0`,
    :math:`r = \min(r_x, r_y)` (the cosines of the principal angles, Björck and Golub 1973),
    and the canonical variates :math:`Q_x A` and :math:`Q_y B` (orthonormal, ``N x r``).

    Returns:
        ``(rho, A, B)``: ``rho`` ``(r,)`` clamped to ``[0, 1]``, ``A`` ``(r_x, r)``,
        ``B`` ``(r_y, r)``.

    Examples:
        >>> q = torch.eye(3)[:, :2]
        >>> canonical_correlations(q, q)[0].tolist()
        [1.0, 1.0]
    """
    qx, qy = _matrix(qx), _matrix(qy)
    if qx.shape[0] != qy.shape[0]:
        raise ValueError(
            f"expected bases with the same number of rows, found {qx.shape[0]} and {qy.shape[0]}"
        )
    r = min(qx.shape[1], qy.shape[1])
    if r == 0:
        return qx.new_zeros(0), qx.new_zeros(qx.shape[1], 0), qx.new_zeros(qy.shape[1], 0)
    res = svd(qx.mT @ qy, vectors="both", method="svd")
    a, b = cast(Tensor, res.U), cast(Tensor, res.V)  # requested above
    return res.S[:r].clamp(0.0, 1.0), a[:, :r], b[:, :r]
