r"""Intruder dimensions and the structure of :math:`\Delta W` from the decompositions of a comparison.

:func:`compare_with_change` is :func:`~spectral_probe.spectral.compare_matrices` (or, with
``blocked=True``, :func:`~spectral_probe.spectral.compare_blocked`) plus a :class:`PairChange`
computed from the singular vectors and Grams that comparison already formed: no further
decomposition of :math:`W_0` or :math:`W`.

**Intruders** (Shuttleworth et al. 2025; peft ``tuners/lora/intruders.py``): for the top
:math:`k` singular vectors of :math:`W`, :math:`c_i = \max_j |\langle u_i, u^0_j \rangle|` over
all of :math:`W_0`'s vectors (:func:`~spectral_probe.spectral.find_intruders`). The comparison
holds one side's vectors (``vectors``, left by default) of both matrices; the other side's
inner products follow without forming those vectors, from
:math:`v_i = W^\top u_i / \sigma_i`:

.. math:: \langle v_i, v^0_j \rangle = \frac{u^{0\top}_j\, W_0 W^\top u_i}{\sigma^0_j\,\sigma_i},

one :math:`(n \times m)(m \times k)` and one :math:`(m \times n)(n \times k)` product. From Grams
(:math:`G = W^\top W`, :math:`C = W_0^\top W` with :math:`m \ge n`) the Gram side's vectors are
the eigenvectors and the other side's products are :math:`V_0^\top C V_{:k}` over
:math:`\sigma^0_j \sigma_i`. Vectors with :math:`\sigma \le` ``rank_rtol`` :math:`\sigma_1` are
undefined there (as in :func:`~spectral_probe.spectral.svd`): :math:`W_0`'s are left out of the
maximum and :math:`W`'s get :math:`c_i` = NaN (never counted).

**Structure of the update** :math:`\Delta W = W - W_0` (or :math:`sBA` from ``factors``): its
singular values (from the factors, :func:`~spectral_probe.spectral.factored_svd`; else the
eigenvalues of :math:`\Delta W^\top \Delta W` or LAPACK's, per ``method``) and the shares of
:math:`\|\Delta W\|_F^2` in :math:`W_0`'s top-:math:`r` and bottom-:math:`r` singular subspaces
(:func:`~spectral_probe.spectral.subspace_energy`): two-sided
:math:`\|U_r^{0\top} \Delta W V^0_r\|_F^2 / \|\Delta W\|_F^2` and one-sided. From Grams, with
:math:`X = W_0^\top \Delta W = C - G_0` and :math:`U^0_r = W_0 V^0_r \Sigma_r^{-1}`:
:math:`\|\Sigma_r^{-1} V_r^{0\top} X V^0_r\|_F^2`, :math:`\|\Sigma_r^{-1} V_r^{0\top} X\|_F^2`
and :math:`\operatorname{tr}(V_r^{0\top} G_E V^0_r)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import Tensor

from .compare import MatrixComparison, _compare_parts
from .gram_pair import GramParts, PairGrams, _check_vectors, _gram_parts, pair_grams
from .lowrank import LowRankSum, factored_svd
from .svd import svd
from .update import subspace_energy, update_frobenius

__all__ = ["ENERGY_NAMES", "PairChange", "compare_grams_with_change", "compare_with_change"]

#: keys of :attr:`PairChange.energy`
ENERGY_NAMES = ("top", "bottom", "top_left", "top_right", "bottom_left", "bottom_right")


@dataclass(frozen=True)
class PairChange:
    """Intruder cosines and update structure of one pair (see the module docstring).

    Attributes:
        max_cos_left: :math:`c_i` of :math:`W`'s top ``k`` left vectors, ``(k,)``.
        max_cos_right: the same for the right vectors.
        sigma: :math:`W`'s top ``k`` singular values, ``(k,)``.
        update_s: singular values of :math:`\\Delta W`, descending.
        update_fro: :math:`\\|\\Delta W\\|_F`.
        subspace_rank: :math:`r` of the top/bottom subspaces (capped at :math:`\\min(m, n)`).
        energy: shares of :math:`\\|\\Delta W\\|_F^2`, keys :data:`ENERGY_NAMES`
            (``top``: both sides, ``top_left``: output side only, ...); 0 for a zero update,
            NaN where the bottom vectors are undefined (rank-deficient :math:`W_0`).
    """

    max_cos_left: Tensor
    max_cos_right: Tensor
    sigma: Tensor
    update_s: Tensor
    update_fro: float
    subspace_rank: int
    energy: dict[str, float]


def _row_max(cross: Tensor, s_a: Tensor, s_t: Tensor, rank_rtol: float) -> Tensor:
    """``max_j |cross[j, i]|`` over W0's defined vectors j; NaN for W's undefined vectors i."""
    dead_a = s_a <= rank_rtol * s_a[0] if s_a.numel() else s_a.bool()
    cross = torch.nan_to_num(cross.abs(), nan=0.0)
    cross[dead_a] = 0.0  # W0's undefined vectors
    out = cross.max(dim=0).values.clamp(max=1.0)
    dead_t = s_t <= rank_rtol * s_a[0] if s_a.numel() else s_t.bool()
    return torch.where(dead_t, torch.full_like(out, float("nan")), out)


def _inverse(s: Tensor, s1: Tensor, rank_rtol: float) -> Tensor:
    """``1 / s``, NaN where ``s <= rank_rtol * s1``."""
    return torch.where(s <= rank_rtol * s1, torch.full_like(s, float("nan")), 1.0 / s)


def _update_values(
    diff: Tensor | None,
    factors: tuple[Tensor, Tensor, float] | None,
    method: str,
    dev: torch.device,
) -> Tensor:
    if factors is not None:
        b, a, scale = factors
        return factored_svd(b.to(dev), a.to(dev), scale=scale).S
    return svd(cast(Tensor, diff), vectors="none", method=cast(Literal["gram", "svd"], method)).S


def _dense_change(
    a: Tensor,
    sa: Tensor,
    basis_a: Tensor,
    b: Tensor,
    sb: Tensor,
    basis_b: Tensor,
    diff: Tensor,
    vectors: str,
    k: int,
    r: int,
    factors: tuple[Tensor, Tensor, float] | None,
    method: str,
    rank_rtol: float,
) -> PairChange:
    # op(W) maps this side's vectors to the other side's: v = W^T u / s (left) or u = W v / s
    op_a, op_b = (a.mT, b.mT) if vectors == "left" else (a, b)
    inv_a = _inverse(sa, sa[0], rank_rtol)
    same = _row_max(basis_a.mT @ basis_b[:, :k], sa, sb[:k], rank_rtol)
    other_b = (op_b @ basis_b[:, :k]) * _inverse(sb[:k], sa[0], rank_rtol)  # W's other-side top-k
    cross = (basis_a.mT @ (op_a.mT @ torch.nan_to_num(other_b))) * torch.nan_to_num(inv_a)[:, None]
    other = _row_max(cross, sa, sb[:k], rank_rtol)
    top, bottom = basis_a[:, :r], basis_a[:, -r:]
    other_top = (op_a @ top) * inv_a[:r]
    other_bottom = (op_a @ bottom) * inv_a[-r:]
    if vectors == "left":
        u_top, v_top, u_bot, v_bot = top, other_top, bottom, other_bottom
        left, right = same, other
    else:
        u_top, v_top, u_bot, v_bot = other_top, top, other_bottom, bottom
        left, right = other, same
    update: Tensor | LowRankSum = diff
    if factors is not None:
        update = LowRankSum(
            None, factors[0].to(a.device), factors[1].to(a.device), scale=factors[2]
        )
    energy = {
        "top": subspace_energy(update, u_top, v_top),
        "bottom": subspace_energy(update, u_bot, v_bot),
        "top_left": subspace_energy(update, u_top),
        "top_right": subspace_energy(update, None, v_top),
        "bottom_left": subspace_energy(update, u_bot),
        "bottom_right": subspace_energy(update, None, v_bot),
    }
    return PairChange(
        max_cos_left=left,
        max_cos_right=right,
        sigma=sb[:k],
        update_s=_update_values(diff, factors, method, a.device),
        update_fro=update_frobenius(update),
        subspace_rank=r,
        energy=energy,
    )


def _gram_change(
    g: GramParts,
    k: int,
    r: int,
    factors: tuple[Tensor, Tensor, float] | None,
    rank_rtol: float,
) -> PairChange:
    s_a, s_b, v_a, v_b = g.s_a, g.s_b, g.v_a, g.v_b
    inv_a = _inverse(s_a, s_a[0], rank_rtol)
    inv_b = _inverse(s_b[:k], s_a[0], rank_rtol)
    gram_side = _row_max(v_a.mT @ v_b[:, :k], s_a, s_b[:k], rank_rtol)
    cross = (v_a.mT @ (g.c @ v_b[:, :k])) * torch.nan_to_num(inv_a)[:, None] * inv_b[None, :]
    other_side = _row_max(cross, s_a, s_b[:k], rank_rtol)
    total = float(g.ge.diagonal().sum().clamp_min(0))
    x = g.c - g.ga  # W0^T dW (this orientation)
    energy: dict[str, float] = {}
    for tag, idx in (("top", slice(0, r)), ("bottom", slice(s_a.shape[0] - r, None))):
        vr, inv = v_a[:, idx], inv_a[idx]
        proj = inv[:, None] * (vr.mT @ x)  # U_r^T dW, (r, n)
        both = float((proj @ vr).square().sum())
        other_only = float(proj.square().sum())
        gram_only = float(((g.ge @ vr) * vr).sum())
        shares = [
            0.0 if total == 0 else min(max(v / total, 0.0), 1.0)
            for v in (both, other_only, gram_only)
        ]
        shares = [
            float("nan") if v != v else s for v, s in zip((both, other_only, gram_only), shares)
        ]
        # the Gram side is the right side, or the original's left when the pair was transposed
        left_share, right_share = (shares[2], shares[1]) if g.transposed else (shares[1], shares[2])
        energy[tag] = shares[0]
        energy[f"{tag}_left"] = left_share
        energy[f"{tag}_right"] = right_share
    if factors is not None:
        b, a, scale = factors
        update_s = factored_svd(b.to(v_a.device), a.to(v_a.device), scale=scale).S
        fro = update_frobenius(LowRankSum(None, b, a, scale=scale))
    else:
        update_s = g.ge_eig.flip(0).clamp_min(0).sqrt()
        fro = total**0.5
    left, right = (gram_side, other_side) if g.transposed else (other_side, gram_side)
    return PairChange(
        max_cos_left=left,
        max_cos_right=right,
        sigma=s_b[:k],
        update_s=update_s,
        update_fro=fro,
        subspace_rank=r,
        energy={name: energy[name] for name in ENERGY_NAMES},
    )


def compare_with_change(
    a: Tensor,
    b: Tensor,
    *,
    vectors: Literal["left", "right"] = "left",
    top_k: int = 10,
    window: float = 0.05,
    method: Literal["gram", "svd"] = "gram",
    intruder_k: int = 10,
    subspace_rank: int = 8,
    factors: tuple[Tensor, Tensor, float] | None = None,
    blocked: bool = False,
    block_rows: int = 1024,
    device: torch.device | str | None = None,
    rank_rtol: float = 1e-7,
) -> tuple[MatrixComparison, PairChange]:
    r"""A pair's :class:`~spectral_probe.spectral.MatrixComparison` and its :class:`PairChange`.

    Args:
        a: pre-trained :math:`W_0`, ``(m, n)``.
        b: fine-tuned :math:`W`, same shape (for an adapter, :math:`W_0 + sBA` merged).
        vectors: as :func:`~spectral_probe.spectral.compare_matrices`.
        top_k: as :func:`~spectral_probe.spectral.compare_matrices`.
        window: as :func:`~spectral_probe.spectral.compare_matrices`.
        method: as :func:`~spectral_probe.spectral.compare_matrices`.
        intruder_k: top vectors of :math:`W` examined (peft's ``top_k``), capped at
            :math:`\min(m, n)`.
        subspace_rank: :math:`r` of the top/bottom subspaces, capped at :math:`\min(m, n)`.
        factors: ``(B, A, s)`` of an adapter (``B (m, r)``, ``A (r, n)``): the update's
            singular values and Frobenius norm from the factors, and (without ``blocked``) its
            energy shares too.
        blocked: :func:`~spectral_probe.spectral.compare_blocked` (row-block Grams, no float64
            copy) instead of :func:`~spectral_probe.spectral.compare_matrices`; ``method`` is
            then the Gram route and the energy shares come from the Grams.
        block_rows: as :func:`~spectral_probe.spectral.compare_blocked`.
        device: as :func:`~spectral_probe.spectral.compare_blocked`.
        rank_rtol: vectors with :math:`\sigma \le` ``rank_rtol`` :math:`\sigma_1` count as undefined.

    Example:
        >>> w0 = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0]))
        >>> _, change = compare_with_change(w0, w0 + 9 * torch.ones(4, 4) / 4, intruder_k=2)
        >>> round(float(change.max_cos_left[0]), 2), round(float(change.max_cos_left[1]), 2)
        (0.58, 0.77)
    """
    if intruder_k < 1 or subspace_rank < 1:
        raise ValueError(
            f"expected intruder_k >= 1 and subspace_rank >= 1, found {intruder_k} and {subspace_rank}"
        )
    small = min(a.shape) if a.ndim == 2 else 0
    k, r = min(intruder_k, small), min(subspace_rank, small)
    if blocked:
        grams = pair_grams(a, b, block_rows=block_rows, device=device)
        return compare_grams_with_change(
            grams,
            vectors=vectors,
            top_k=top_k,
            window=window,
            intruder_k=intruder_k,
            subspace_rank=subspace_rank,
            factors=factors,
            rank_rtol=rank_rtol,
        )
    cmp, sa, sb, diff = _compare_parts(
        a, b, vectors=vectors, top_k=top_k, window=window, method=method, dtype=torch.float64
    )
    basis_a = cast(Tensor, sa.U if vectors == "left" else sa.V)
    basis_b = cast(Tensor, sb.U if vectors == "left" else sb.V)
    f64 = torch.float64
    change = _dense_change(
        a.to(f64),
        sa.S,
        basis_a,
        b.to(f64),
        sb.S,
        basis_b,
        diff,
        vectors,
        k,
        r,
        factors,
        method,
        rank_rtol,
    )
    return cmp, change


def compare_grams_with_change(
    grams: PairGrams,
    *,
    vectors: Literal["left", "right"] = "left",
    top_k: int = 10,
    window: float = 0.05,
    intruder_k: int = 10,
    subspace_rank: int = 8,
    factors: tuple[Tensor, Tensor, float] | None = None,
    rank_rtol: float = 1e-7,
) -> tuple[MatrixComparison, PairChange]:
    r""":func:`compare_with_change` with ``blocked=True``, from Grams already accumulated by
    :func:`~spectral_probe.spectral.pair_grams` (the matrices themselves are not needed).

    Args:
        grams: the pair's :class:`~spectral_probe.spectral.PairGrams`.
        vectors: as :func:`compare_with_change`.
        top_k: as :func:`compare_with_change`.
        window: as :func:`compare_with_change`.
        intruder_k: as :func:`compare_with_change`.
        subspace_rank: as :func:`compare_with_change`.
        factors: as :func:`compare_with_change`.
        rank_rtol: as :func:`compare_with_change`.

    Example:
        >>> from spectral_probe.spectral import pair_grams
        >>> w0 = torch.diag(torch.tensor([4.0, 3.0, 2.0, 1.0]))
        >>> _, change = compare_grams_with_change(pair_grams(w0, 2 * w0), intruder_k=2)
        >>> change.max_cos_left.tolist()
        [1.0, 1.0]
    """
    if intruder_k < 1 or subspace_rank < 1:
        raise ValueError(
            f"expected intruder_k >= 1 and subspace_rank >= 1, found {intruder_k} and {subspace_rank}"
        )
    _check_vectors(vectors)
    small = int(grams.ga.shape[0])
    k, r = min(intruder_k, small), min(subspace_rank, small)
    cmp, parts = _gram_parts(grams, vectors, top_k, window, rank_rtol)
    return cmp, _gram_change(parts, k, r, factors, rank_rtol)
