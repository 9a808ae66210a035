"""Everything the paper's weight analysis asks of one pair of matrices, in one pass.

Given a reference matrix :math:`W_a` (pre-trained) and :math:`W_b` (fine-tuned) of the same
shape, :func:`compare_matrices` computes both spectra, the corresponding angles, their Wedin
bounds (with :math:`\\|E\\|_2 = \\|W_b - W_a\\|_2`), the near-degenerate clusters and the
cluster-aware alignment, and the principal angles between the top-k subspaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import Tensor

from .angles import cluster_cosines, corresponding_cosines, principal_cosines, spectral_clusters, wedin_bounds
from .svd import spectral_norm, svd

__all__ = ["MatrixComparison", "compare_matrices"]


@dataclass(frozen=True)
class MatrixComparison:
    """Spectra and angles of one matrix pair; all tensors of length ``r = min(m, n)``.

    Attributes:
        s_a: singular values of the reference, descending.
        s_b: singular values of the compared matrix, descending.
        cos: :math:`|\\cos\\theta_i|` of the index-matched singular vectors.
        sin_bound: Wedin's bound on :math:`\\sin\\theta_i` (1 = no guarantee).
        clusters: cluster label of each index (near-equal singular values share one).
        cos_cluster: alignment of each index's cluster subspaces (``cos`` for singletons).
        principal: cosines of the principal angles between the top-``k`` subspaces.
        e_norm: :math:`\\|W_b - W_a\\|_2`.
        e_fro: :math:`\\|W_b - W_a\\|_F`.
        a_fro: :math:`\\|W_a\\|_F`.
    """

    s_a: Tensor
    s_b: Tensor
    cos: Tensor
    sin_bound: Tensor
    clusters: Tensor
    cos_cluster: Tensor
    principal: Tensor
    e_norm: float
    e_fro: float
    a_fro: float


def compare_matrices(
    a: Tensor,
    b: Tensor,
    *,
    vectors: Literal["left", "right"] = "left",
    top_k: int = 10,
    cluster_tol: float | None = None,
    method: Literal["gram", "svd"] = "gram",
    dtype: torch.dtype = torch.float64,
) -> MatrixComparison:
    """Compare two same-shape matrices spectrally.

    Args:
        a: reference matrix ``(m, n)`` (e.g. the pre-trained layer).
        b: compared matrix ``(m, n)`` (e.g. the fine-tuned layer).
        vectors: compare left (default; one per output unit) or right singular vectors.
        top_k: size of the leading subspaces compared by principal angles.
        cluster_tol: singular values closer than this (in either spectrum) form a cluster;
            default :math:`\\|W_b - W_a\\|_2`, the scale below which Wedin's theorem cannot
            tell index-matched vectors apart.
        method: ``"gram"`` (fast, default) or ``"svd"``; see :func:`spectral_probe.spectral.svd`.
        dtype: working precision.
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two matrices of the same 2-D shape, found {tuple(a.shape)} and {tuple(b.shape)}")
    if vectors not in ("left", "right"):
        raise ValueError(f"expected vectors 'left' or 'right', found {vectors!r}")
    a = a.to(dtype)
    b = b.to(dtype)
    sa = svd(a, vectors=vectors, method=method, dtype=dtype)
    sb = svd(b, vectors=vectors, method=method, dtype=dtype)
    basis_a = cast(Tensor, sa.U if vectors == "left" else sa.V)
    basis_b = cast(Tensor, sb.U if vectors == "left" else sb.V)
    diff = b - a
    e_norm = spectral_norm(diff)
    cos = corresponding_cosines(basis_a, basis_b)
    bound = wedin_bounds(sa.S, sb.S, e_norm, square=a.shape[0] == a.shape[1])
    tol = e_norm if cluster_tol is None else torch.as_tensor(cluster_tol, dtype=dtype)
    labels = spectral_clusters(sa.S, sb.S, tol)
    # Rank-deficient matrices have undefined (NaN) vectors: they poison only their cluster.
    cos_cluster = cluster_cosines(basis_a, basis_b, labels)
    k = min(top_k, basis_a.shape[1])
    lead_a, lead_b = basis_a[:, :k], basis_b[:, :k]
    if k > 0 and bool(torch.isfinite(lead_a).all() and torch.isfinite(lead_b).all()):
        principal = principal_cosines(lead_a, lead_b)
    else:
        principal = basis_a.new_full((k,), float("nan"))
    return MatrixComparison(
        s_a=sa.S,
        s_b=sb.S,
        cos=cos,
        sin_bound=bound,
        clusters=labels,
        cos_cluster=cos_cluster,
        principal=principal,
        e_norm=float(e_norm),
        e_fro=float(torch.linalg.vector_norm(diff)),
        a_fro=float(torch.linalg.vector_norm(a)),
    )
