r"""A matrix pair compared through its Gram matrices, read in row blocks: no full float64 copy.

For :math:`W_a, W_b \in \mathbb{R}^{m \times n}` with :math:`m \ge n` (else both are
transposed and left and right swap), four :math:`n \times n` float64 matrices are accumulated
over blocks of rows, each block upcast on its own:

.. math:: G_a = W_a^\top W_a,\quad G_b = W_b^\top W_b,\quad C = W_a^\top W_b,\quad
   G_E = (W_b - W_a)^\top (W_b - W_a).

The eigendecompositions :math:`G = V \Lambda V^\top` give :math:`\sigma = \sqrt\lambda` and the
right singular vectors :math:`V`; the left ones are :math:`u_i = W v_i / \|W v_i\|`, never
formed: their inner products are

.. math:: \langle u^a_i, u^b_j \rangle = \frac{(V_a^\top C V_b)_{ij}}{\|W_a v^a_i\|\,\|W_b v^b_j\|},
   \qquad \|W v_i\| = \sqrt{(V^\top G V)_{ii}},

so corresponding cosines, window alignments and principal angles come from an
:math:`r \times r` matrix, :math:`\|W_b - W_a\|_2 = \sqrt{\lambda_{\max}(G_E)}` and
:math:`\|W_b - W_a\|_F^2 = \operatorname{tr} G_E`. This is the arithmetic of
:func:`~spectral_probe.spectral.compare_matrices` with ``method="gram"`` (the same Gram
eigendecompositions, the same :math:`\sigma^{-1}` completion, NaN vectors below ``rank_rtol``),
in a different order; peak memory is four :math:`n^2` float64 matrices, their eigenvectors and
one block of rows of each matrix (1024 rows by default, accumulated in place), instead of
float64 copies of both matrices and of the :math:`m \times r` vectors.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor

from .angles import wedin_bounds
from .compare import MatrixComparison

__all__ = ["PairGrams", "compare_blocked", "compare_grams", "pair_grams"]


class PairGrams(NamedTuple):
    """The four float64 Grams of a pair (:func:`pair_grams`), on the smaller side ``n``.

    Attributes:
        ga: :math:`W_a^\\top W_a`, ``(n, n)`` (of the transposes when ``transposed``).
        gb: :math:`W_b^\\top W_b`.
        c: :math:`W_a^\\top W_b`.
        ge: :math:`(W_b - W_a)^\\top (W_b - W_a)`.
        rows: the larger side ``m``.
        transposed: the matrices were ``(n, m)`` with ``n < m`` and were read transposed.
    """

    ga: Tensor
    gb: Tensor
    c: Tensor
    ge: Tensor
    rows: int
    transposed: bool


class GramParts(NamedTuple):
    """The Grams and eigendecompositions behind :func:`compare_blocked`, Gram side on the right.

    ``transposed`` is True when the matrices were transposed (``m < n``): then the Gram side
    is the original's left side. ``ge_eig`` holds the eigenvalues of ``ge``, ascending.
    """

    ga: Tensor
    gb: Tensor
    c: Tensor
    ge: Tensor
    s_a: Tensor
    v_a: Tensor
    s_b: Tensor
    v_b: Tensor
    ge_eig: Tensor
    transposed: bool


def _window_from_cross(
    cross: Tensor, s_a: Tensor, s_b: Tensor, rtol: float, ambient: int
) -> tuple[Tensor, Tensor]:
    """:func:`~spectral_probe.spectral.window_cosines` from the cross products ``cross[i, j] =
    <a_i, b_j>`` of unit vectors in a space of dimension ``ambient`` (same windows, same chance
    correction)."""
    r = cross.shape[0]
    ascending = s_b.flip(0).contiguous()
    hi = torch.searchsorted(ascending, s_a * (1 + rtol), right=True)
    lo = torch.searchsorted(ascending, s_a * (1 - rtol), right=False)
    idx = torch.arange(r, device=cross.device)
    empty = hi <= lo
    start = torch.where(empty, idx, torch.minimum(r - hi, idx))
    stop = torch.where(empty, idx + 1, torch.maximum(r - lo, idx + 1))
    cols = idx[None, :]
    inside = (cols >= start[:, None]) & (cols < stop[:, None])
    rho = torch.where(inside, cross.square(), cross.new_zeros(())).sum(dim=1)
    size = (stop - start).to(cross.dtype)
    chance = size / ambient
    out = ((rho.clamp(max=1.0) - chance) / (1 - chance)).clamp(min=0.0).sqrt()
    return torch.where(size >= ambient, torch.full_like(out, float("nan")), out), stop - start


def _eigh_desc(gram: Tensor) -> tuple[Tensor, Tensor]:
    lam, q = torch.linalg.eigh(gram)
    return lam.flip(0).clamp_min(0).sqrt(), q.flip(1)


def pair_grams(
    a: Tensor,
    b: Tensor,
    *,
    block_rows: int = 1024,
    device: torch.device | str | None = None,
) -> PairGrams:
    """The Grams of :func:`compare_blocked`, accumulated from float64 blocks of rows.

    Once they are formed the matrices are no longer needed: a caller that drops them (and so
    unmaps a memory-mapped tensor) before :func:`compare_grams` holds less at once.

    Args:
        a: reference matrix ``(m, n)`` in any floating dtype (a memory-mapped tensor is read one
            block at a time).
        b: compared matrix, same shape.
        block_rows: rows of ``a`` and ``b`` upcast to float64 at a time.
        device: where the blocks and Grams live (default: ``a``'s device).

    Example:
        >>> g = pair_grams(torch.eye(3), 2 * torch.eye(3), block_rows=2)
        >>> g.c.diagonal().tolist(), g.ge.diagonal().tolist()
        ([2.0, 2.0, 2.0], [1.0, 1.0, 1.0])
    """
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(
            f"expected two matrices of the same 2-D shape, found {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if block_rows < 1:
        raise ValueError(f"expected block_rows >= 1, found {block_rows}")
    dev = torch.device(device) if device is not None else a.device
    transposed = a.shape[0] < a.shape[1]
    if transposed:  # Gram on the smaller side
        a, b = a.mT, b.mT
    m, n = a.shape
    f64 = torch.float64
    ga, gb, c, ge = (torch.zeros(n, n, dtype=f64, device=dev) for _ in range(4))
    for first in range(0, m, block_rows):
        xa = a[first : first + block_rows].to(dev, f64)
        xb = b[first : first + block_rows].to(dev, f64)
        ga.addmm_(xa.mT, xa)  # in place: no n x n temporary per product
        gb.addmm_(xb.mT, xb)
        c.addmm_(xa.mT, xb)
        e = xb - xa  # not in place: a float64 block may be a view of b itself
        ge.addmm_(e.mT, e)
        del xa, xb, e
    return PairGrams(ga, gb, c, ge, int(m), transposed)


def compare_blocked(
    a: Tensor,
    b: Tensor,
    *,
    vectors: Literal["left", "right"] = "left",
    top_k: int = 10,
    window: float = 0.05,
    block_rows: int = 1024,
    device: torch.device | str | None = None,
    rank_rtol: float = 1e-7,
) -> MatrixComparison:
    """:func:`~spectral_probe.spectral.compare_matrices` (``method="gram"``) from row blocks.

    The same as :func:`compare_grams` of :func:`pair_grams`.

    Args:
        a: reference matrix ``(m, n)`` in any floating dtype (a memory-mapped tensor is read one
            block at a time).
        b: compared matrix, same shape.
        vectors: compare left (default) or right singular vectors.
        top_k: size of the leading subspaces compared by principal angles.
        window: relative spectral window (see :func:`~spectral_probe.spectral.window_cosines`).
        block_rows: rows of ``a`` and ``b`` upcast to float64 at a time.
        device: where the blocks and Grams live (default: ``a``'s device).
        rank_rtol: vectors completed through :math:`\\sigma^{-1}` are NaN where
            :math:`\\sigma_i \\le` ``rank_rtol`` :math:`\\sigma_1`, as in
            :func:`~spectral_probe.spectral.svd`.

    Example:
        >>> w = torch.diag(torch.tensor([3.0, 2.0, 1.0]))
        >>> compare_blocked(w, w, block_rows=2).cos.tolist()
        [1.0, 1.0, 1.0]
    """
    _check_vectors(vectors)
    grams = pair_grams(a, b, block_rows=block_rows, device=device)
    return _gram_parts(grams, vectors, top_k, window, rank_rtol)[0]


def compare_grams(
    grams: PairGrams,
    *,
    vectors: Literal["left", "right"] = "left",
    top_k: int = 10,
    window: float = 0.05,
    rank_rtol: float = 1e-7,
) -> MatrixComparison:
    """:func:`compare_blocked` from Grams already accumulated by :func:`pair_grams`.

    Args:
        grams: the pair's :class:`PairGrams`.
        vectors: compare left (default) or right singular vectors of the original matrices.
        top_k: size of the leading subspaces compared by principal angles.
        window: relative spectral window.
        rank_rtol: as :func:`compare_blocked`.

    Example:
        >>> w = torch.diag(torch.tensor([3.0, 2.0, 1.0]))
        >>> compare_grams(pair_grams(w, w)).cos.tolist()
        [1.0, 1.0, 1.0]
    """
    _check_vectors(vectors)
    return _gram_parts(grams, vectors, top_k, window, rank_rtol)[0]


def _check_vectors(vectors: str) -> None:
    if vectors not in ("left", "right"):
        raise ValueError(f"expected vectors 'left' or 'right', found {vectors!r}")


def _gram_parts(
    grams: PairGrams,
    vectors: Literal["left", "right"],
    top_k: int,
    window: float,
    rank_rtol: float,
) -> tuple[MatrixComparison, GramParts]:
    """:func:`compare_grams` and its :class:`GramParts`."""
    ga, gb, c, ge, m, transposed = grams
    n = int(ga.shape[0])
    if transposed:  # the Gram side is the original's left side
        vectors = "right" if vectors == "left" else "left"
    s_a, v_a = _eigh_desc(ga)
    s_b, v_b = _eigh_desc(gb)
    if vectors == "right":  # the Gram side's own vectors
        cross = v_a.mT @ v_b
        ambient = n
    else:  # the other side's vectors, through C and the norms ||W v_i||
        norm_a = (v_a * (ga @ v_a)).sum(0).clamp_min(0).sqrt()
        norm_b = (v_b * (gb @ v_b)).sum(0).clamp_min(0).sqrt()
        norm_a = torch.where(s_a <= rank_rtol * s_a[0], float("nan"), norm_a)
        norm_b = torch.where(s_b <= rank_rtol * s_b[0], float("nan"), norm_b)
        cross = (v_a.mT @ c @ v_b) / norm_a[:, None] / norm_b[None, :]
        ambient = m
    cos = cross.diagonal().abs().clamp(max=1.0)
    ge_eig = torch.linalg.eigvalsh(ge)
    e_norm = ge_eig[-1].clamp_min(0).sqrt()
    bound = wedin_bounds(s_a, s_b, e_norm, square=m == n)
    cos_window, sizes = _window_from_cross(cross, s_a, s_b, window, ambient)
    k = min(top_k, n)
    lead = cross[:k, :k]
    if k > 0 and bool(torch.isfinite(lead).all()):
        principal = torch.linalg.svdvals(lead).clamp(0.0, 1.0)
    else:
        principal = cross.new_full((k,), float("nan"))
    cmp = MatrixComparison(
        s_a=s_a,
        s_b=s_b,
        cos=cos,
        sin_bound=bound,
        cos_window=cos_window,
        window=sizes,
        principal=principal,
        e_norm=float(e_norm),
        e_fro=float(ge.diagonal().sum().clamp_min(0).sqrt()),
        a_fro=float(ga.diagonal().sum().clamp_min(0).sqrt()),
    )
    return cmp, GramParts(ga, gb, c, ge, s_a, v_a, s_b, v_b, ge_eig, transposed)
