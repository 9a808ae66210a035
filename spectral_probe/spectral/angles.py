"""Angles between the singular vectors of two matrices.

*Corresponding angles* (paper, Definition 1) pair the i-th singular vector of one matrix with
the i-th of the other, in singular-value order:

.. math:: |\\cos\\theta_i| = \\frac{|\\langle u^a_i, u^b_i \\rangle|}{\\|u^a_i\\|\\,\\|u^b_i\\|}.

Singular vectors have arbitrary signs, so only :math:`|\\cos\\theta_i|` is meaningful.
*Principal angles* (:func:`principal_cosines`) instead compare two subspaces regardless of
which singular value each vector belongs to.

Index matching is ill-posed where singular values nearly coincide: an arbitrarily small
perturbation can rotate vectors within such a cluster. Wedin's :math:`\\sin\\Theta` theorem
bounds the rotation of the i-th pair by

.. math:: \\sin\\theta_i \\le \\frac{\\|W_b - W_a\\|_2}{\\delta_i},\\qquad
   \\delta_i = \\min_{j \\ne i} |\\sigma^b_i - \\sigma^a_j|

(with :math:`\\sigma^b_i` itself joining the minimum when the matrix is not square), see
:func:`wedin_bounds`. Where the bound says nothing, :func:`window_cosines` gives the
near-degeneracy-aware view: how much of the i-th vector of one matrix lies in the span of the
other's vectors whose singular values are within a relative window of :math:`\\sigma_i`,
corrected for the level a random direction would reach (so unrelated weights read 0, not 1).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "corresponding_cosines",
    "principal_cosines",
    "wedin_bounds",
    "window_cosines",
]


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(
            "expected two 2-D bases with the same number of rows, "
            f"found shapes {tuple(a.shape)} and {tuple(b.shape)}"
        )


def corresponding_cosines(a: Tensor, b: Tensor) -> Tensor:
    """:math:`|\\cos\\theta_i|` between column ``i`` of ``a`` and column ``i`` of ``b``.

    Args:
        a: singular vectors of the first matrix as columns, shape ``(m, r_a)``.
        b: singular vectors of the second matrix, shape ``(m, r_b)``.

    Returns:
        Shape ``(min(r_a, r_b),)``, values in ``[0, 1]`` (NaN where a vector is NaN or zero).

    Example:
        >>> corresponding_cosines(torch.eye(2), -torch.eye(2)).tolist()
        [1.0, 1.0]
    """
    _check_pair(a, b)
    r = min(a.shape[1], b.shape[1])
    a, b = a[:, :r], b[:, :r]
    dots = (a * b).sum(dim=0).abs()
    cos = dots / (a.norm(dim=0) * b.norm(dim=0))
    return cos.clamp(max=1.0)


def principal_cosines(a: Tensor, b: Tensor, k: int | None = None) -> Tensor:
    """Cosines of the principal angles between ``span(a[:, :k])`` and ``span(b[:, :k])``.

    Columns need not be orthonormal (they are orthonormalised by QR first). Returned in
    descending order of cosine (ascending angle); ``torch.arccos`` gives the angles, which
    agree with ``scipy.linalg.subspace_angles`` up to its (descending-angle) order.
    """
    _check_pair(a, b)
    if k is not None:
        if k < 1:
            raise ValueError(f"expected k >= 1, found {k}")
        a, b = a[:, :k], b[:, :k]
    qa = torch.linalg.qr(a).Q
    qb = torch.linalg.qr(b).Q
    return torch.linalg.svdvals(qa.mT @ qb).clamp(0.0, 1.0)


def wedin_bounds(
    s_a: Tensor, s_b: Tensor, e_norm: Tensor | float, *, square: bool = True
) -> Tensor:
    """Upper bounds on :math:`\\sin\\theta_i` for each index-matched singular pair.

    Args:
        s_a: singular values of the reference matrix, descending, shape ``(r,)``.
        s_b: singular values of the compared matrix, descending, shape ``(r,)``.
        e_norm: :math:`\\|W_b - W_a\\|_2`.
        square: ``False`` when the matrices are not square; then the implicit zero singular
            values of the complement also count as neighbours.

    Returns:
        ``min(1, e_norm / delta_i)``, shape ``(r,)``; 1 where ``delta_i = 0``.
    """
    if s_a.shape != s_b.shape or s_a.ndim != 1:
        raise ValueError(
            f"expected two 1-D spectra of equal length, found {tuple(s_a.shape)} and {tuple(s_b.shape)}"
        )
    r = s_a.shape[0]
    diff = (s_b[:, None] - s_a[None, :]).abs()
    diff.diagonal().fill_(float("inf"))
    delta = diff.min(dim=1).values if r > 1 else torch.full_like(s_b, float("inf"))
    if not square:
        delta = torch.minimum(delta, s_b)
    e = torch.as_tensor(e_norm, dtype=s_b.dtype, device=s_b.device)
    bound = torch.where(delta > 0, e / delta, torch.ones_like(delta))
    return bound.clamp(max=1.0)


def window_cosines(
    a: Tensor, b: Tensor, s_a: Tensor, s_b: Tensor, rtol: float = 0.05
) -> tuple[Tensor, Tensor]:
    """Alignment, beyond chance, of each vector of ``a`` with ``b``'s vectors of similar strength.

    For index :math:`i` the window :math:`W_i` is the contiguous index range that covers
    :math:`i` and every :math:`j` with :math:`|\\sigma^b_j - \\sigma^a_i| \\le` ``rtol``
    :math:`\\sigma^a_i`. The captured energy :math:`\\rho_i = \\sum_{j \\in W_i} \\langle a_i, b_j\\rangle^2`
    (the squared cosine between :math:`a_i` and the span of :math:`\\{b_j\\}_{j \\in W_i}`; columns
    are assumed orthonormal, as singular vectors are) reaches :math:`k/m` on average for a random
    direction, with :math:`k = |W_i|` and :math:`m` the ambient dimension, so the value returned is

    .. math:: \\sqrt{\\max\\left(0, \\frac{\\rho_i - k/m}{1 - k/m}\\right)}

    1 when :math:`a_i` lies in that span, about 0 for unrelated bases, NaN when the window
    spans the whole space (:math:`k = m`). With ``rtol = 0`` it is the chance-corrected
    :math:`|\\cos\\theta_i|`; it never falls below that since :math:`i \\in W_i`.

    Returns:
        ``(values, sizes)``, both of shape ``(r,)``: the alignment and :math:`k` per index.
    """
    _check_pair(a, b)
    r = min(a.shape[1], b.shape[1], s_a.shape[0], s_b.shape[0])
    if rtol < 0:
        raise ValueError(f"expected rtol >= 0, found {rtol}")
    m = a.shape[0]
    a, b, s_a, s_b = a[:, :r], b[:, :r], s_a[:r], s_b[:r]
    ascending = s_b.flip(0).contiguous()
    hi = torch.searchsorted(ascending, s_a * (1 + rtol), right=True)
    lo = torch.searchsorted(ascending, s_a * (1 - rtol), right=False)
    idx = torch.arange(r, device=a.device)
    empty = hi <= lo  # no compared singular value inside the window: just the index itself
    start = torch.where(empty, idx, torch.minimum(r - hi, idx))
    stop = torch.where(empty, idx + 1, torch.maximum(r - lo, idx + 1))
    rho = torch.empty(r, dtype=a.dtype, device=a.device)
    block = 128
    for first in range(0, r, block):
        last = min(first + block, r)
        lo_band, hi_band = int(start[first:last].min()), int(stop[first:last].max())
        cross = a[:, first:last].mT @ b[:, lo_band:hi_band]
        cols = torch.arange(lo_band, hi_band, device=a.device)
        inside = (cols >= start[first:last, None]) & (cols < stop[first:last, None])
        # where(), not a product: a NaN vector outside a row's window must not poison it
        rho[first:last] = torch.where(inside, cross.square(), cross.new_zeros(())).sum(dim=1)
    size = (stop - start).to(a.dtype)
    chance = size / m
    out = ((rho.clamp(max=1.0) - chance) / (1 - chance)).clamp(min=0.0).sqrt()
    return torch.where(size >= m, torch.full_like(out, float("nan")), out), stop - start
