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
:func:`wedin_bounds`. :func:`spectral_clusters` groups indices whose singular values are closer
than a tolerance and :func:`cluster_cosines` measures the angle between the cluster subspaces
instead: the root mean square of the cosines of their principal angles, corrected for the
level two random subspaces of that size would reach (so unrelated weights read 0, not 1).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = [
    "corresponding_cosines",
    "principal_cosines",
    "wedin_bounds",
    "spectral_clusters",
    "cluster_cosines",
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


def wedin_bounds(s_a: Tensor, s_b: Tensor, e_norm: Tensor | float, *, square: bool = True) -> Tensor:
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


def spectral_clusters(s_a: Tensor, s_b: Tensor, tol: Tensor | float) -> Tensor:
    """Group consecutive indices whose singular values nearly coincide.

    Indices ``i`` and ``i + 1`` share a cluster when :math:`\\sigma_i - \\sigma_{i+1} \\le`
    ``tol`` in either spectrum. Returns integer labels ``0, 1, ...`` of shape ``(r,)``,
    non-decreasing along the index.
    """
    if s_a.shape != s_b.shape or s_a.ndim != 1:
        raise ValueError(
            f"expected two 1-D spectra of equal length, found {tuple(s_a.shape)} and {tuple(s_b.shape)}"
        )
    if s_a.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=s_a.device)
    gap = torch.minimum(s_a[:-1] - s_a[1:], s_b[:-1] - s_b[1:])
    new_cluster = gap > torch.as_tensor(tol, dtype=gap.dtype, device=gap.device)
    starts = torch.cat([new_cluster.new_zeros(1), new_cluster]).long()
    return torch.cumsum(starts, dim=0)


def cluster_cosines(a: Tensor, b: Tensor, labels: Tensor) -> Tensor:
    """Per-index alignment, beyond chance, of the cluster subspaces each index belongs to.

    For a cluster :math:`C` of :math:`c` indices in an ambient space of dimension :math:`m`
    (the rows of ``a``), let :math:`\\rho = \\|a_C^\\top b_C\\|_F^2 / c`, the mean squared cosine
    of the principal angles between the two cluster subspaces (columns are assumed
    orthonormal, as singular vectors are). Two random :math:`c`-dimensional subspaces have
    :math:`E[\\rho] = c / m`, so the value reported for every index in :math:`C` is

    .. math:: \\sqrt{\\max\\left(0, \\frac{\\rho - c/m}{1 - c/m}\\right)}

    which is 1 for identical subspaces and about 0 for unrelated ones. A cluster that spans
    the whole space (:math:`c = m`) is trivially aligned and gets NaN. For a singleton this is
    :math:`|\\cos\\theta_i|` corrected for the chance level :math:`1/m`.
    """
    _check_pair(a, b)
    r = labels.shape[0]
    m = a.shape[0]
    a, b = a[:, :r], b[:, :r]
    rho = (a * b).sum(dim=0) ** 2  # singleton clusters: the squared corresponding cosine
    size = torch.ones_like(rho)
    sizes = torch.bincount(labels)
    for label in torch.nonzero(sizes > 1).flatten().tolist():
        idx = torch.nonzero(labels == label).flatten()
        lo, hi = int(idx[0]), int(idx[-1]) + 1
        cross = a[:, lo:hi].mT @ b[:, lo:hi]
        rho[lo:hi] = torch.linalg.matrix_norm(cross) ** 2 / (hi - lo)
        size[lo:hi] = hi - lo
    chance = size / m
    out = ((rho.clamp(max=1.0) - chance) / (1 - chance)).clamp(min=0.0).sqrt()
    return torch.where(size >= m, torch.full_like(out, float("nan")), out)
