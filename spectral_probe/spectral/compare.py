"""Everything the paper's weight analysis asks of one pair of matrices, in one pass.

Given a reference matrix :math:`W_a` (pre-trained) and :math:`W_b` (fine-tuned) of the same
shape, :func:`compare_matrices` computes both spectra, the corresponding angles, their Wedin
bounds (with :math:`\\|E\\|_2 = \\|W_b - W_a\\|_2`), the spectral-window alignment that
tolerates reordering among near-equal singular values, and the principal angles between the
top-k subspaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import Tensor

from .angles import corresponding_cosines, principal_cosines, wedin_bounds, window_cosines
from .svd import SVD, spectral_norm, svd

__all__ = ["MatrixComparison", "compare_matrices"]


@dataclass(frozen=True)
class MatrixComparison:
    """Spectra and angles of one matrix pair; all tensors of length ``r = min(m, n)``.

    Attributes:
        s_a: singular values of the reference, descending.
        s_b: singular values of the compared matrix, descending.
        cos: :math:`|\\cos\\theta_i|` of the index-matched singular vectors.
        sin_bound: Wedin's bound on :math:`\\sin\\theta_i` (1 = no guarantee).
        cos_window: alignment of each reference vector with the compared matrix's vectors of
            similar singular value, beyond chance (:func:`~spectral_probe.spectral.window_cosines`).
        window: number of compared vectors in each index's window.
        principal: cosines of the principal angles between the top-``k`` subspaces.
        e_norm: :math:`\\|W_b - W_a\\|_2`.
        e_fro: :math:`\\|W_b - W_a\\|_F`.
        a_fro: :math:`\\|W_a\\|_F`.
    """

    s_a: Tensor
    s_b: Tensor
    cos: Tensor
    sin_bound: Tensor
    cos_window: Tensor
    window: Tensor
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
    window: float = 0.05,
    method: Literal["gram", "svd"] = "gram",
    dtype: torch.dtype = torch.float64,
) -> MatrixComparison:
    """Compare two same-shape matrices spectrally.

    :func:`spectral_probe.spectral.compare_with_change` returns the same comparison with the
    intruder dimensions and the update's structure from the same decompositions.

    Args:
        a: reference matrix ``(m, n)`` (e.g. the pre-trained layer).
        b: compared matrix ``(m, n)`` (e.g. the fine-tuned layer).
        vectors: compare left (default; one per output unit) or right singular vectors.
        top_k: size of the leading subspaces compared by principal angles.
        window: relative width of the spectral window: vectors of ``b`` whose singular value is
            within ``window * sigma_i`` of the reference's count as interchangeable with ``i``.
        method: ``"gram"`` (fast, default) or ``"svd"``; see :func:`spectral_probe.spectral.svd`.
        dtype: working precision.
    """
    return _compare_parts(
        a, b, vectors=vectors, top_k=top_k, window=window, method=method, dtype=dtype
    )[0]


def _compare_parts(
    a: Tensor,
    b: Tensor,
    *,
    vectors: Literal["left", "right"],
    top_k: int,
    window: float,
    method: Literal["gram", "svd"],
    dtype: torch.dtype,
) -> tuple[MatrixComparison, SVD, SVD, Tensor]:
    """:func:`compare_matrices` and its parts: both SVDs (``vectors`` side) and ``b - a``."""
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"expected two matrices of the same 2-D shape, found {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if vectors not in ("left", "right"):
        raise ValueError(f"expected vectors 'left' or 'right', found {vectors!r}")
    a = a.to(dtype)
    b = b.to(dtype)
    sa = svd(a, vectors=vectors, method=method, dtype=dtype)
    sb = svd(b, vectors=vectors, method=method, dtype=dtype)
    basis_a = cast(Tensor, sa.U if vectors == "left" else sa.V)
    basis_b = cast(Tensor, sb.U if vectors == "left" else sb.V)
    diff = b - a
    # ||E||_2 only scales Wedin's bounds: float32 (half the memory traffic) is ample
    e_norm = spectral_norm(diff.float() if diff.dtype == torch.float64 else diff).to(dtype)
    cos = corresponding_cosines(basis_a, basis_b)
    bound = wedin_bounds(sa.S, sb.S, e_norm, square=a.shape[0] == a.shape[1])
    # Rank-deficient matrices have undefined (NaN) vectors: they poison only their windows.
    cos_window, sizes = window_cosines(basis_a, basis_b, sa.S, sb.S, window)
    k = min(top_k, basis_a.shape[1])
    lead_a, lead_b = basis_a[:, :k], basis_b[:, :k]
    if k > 0 and bool(torch.isfinite(lead_a).all() and torch.isfinite(lead_b).all()):
        principal = principal_cosines(lead_a, lead_b)
    else:
        principal = basis_a.new_full((k,), float("nan"))
    cmp = MatrixComparison(
        s_a=sa.S,
        s_b=sb.S,
        cos=cos,
        sin_bound=bound,
        cos_window=cos_window,
        window=sizes,
        principal=principal,
        e_norm=float(e_norm),
        e_fro=float(torch.linalg.vector_norm(diff)),
        a_fro=float(torch.linalg.vector_norm(a)),
    )
    return cmp, sa, sb, diff
