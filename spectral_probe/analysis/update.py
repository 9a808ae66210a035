r"""What changed in one weight matrix: the structure of :math:`\Delta W` and its intruder dimensions.

:func:`update_structure` takes a pre-trained :math:`W_0` and either the fine-tuned :math:`W`
(dense) or LoRA factors :math:`(B, A, s)` with :math:`\Delta W = sBA`, and returns one
:class:`UpdateStructure` record: norms and ranks of :math:`\Delta W`, the share of its energy in
:math:`W_0`'s top and bottom singular subspaces, principal angles between the top-``k``
subspaces of :math:`W_0` and :math:`W`, and the intruder dimensions of :math:`W` (left and right,
with an :math:`\epsilon` sweep). The maths live in :mod:`spectral_probe.spectral` (``update``,
``rank``, ``intruders``, ``lowrank``, ``randomized``); this module only assembles them. No I/O:
:func:`update_frame` and :func:`sweep_frame` give tidy tables for a caller to write.

Definitions and how to read each number: ``docs/what-changed.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast

import pandas as pd
import torch
from torch import Tensor

from ..errors import ConfigError
from ..spectral import (
    SVD,
    LowRankSum,
    chance_subspace_energy,
    effective_rank,
    energy_rank,
    find_intruders,
    gavish_donoho_rank,
    gavish_donoho_threshold,
    intruder_sweep,
    principal_cosines,
    randomized_svd,
    similarity_matrix,
    stable_rank,
    subspace_energy,
    svd,
    top_singular,
    triplet_residuals,
    update_frobenius,
    update_singular_values,
)

__all__ = [
    "DEFAULT_EPSILONS",
    "DEFAULT_SUBSPACE_RANK",
    "UPDATE_COLUMNS",
    "UpdateStructure",
    "similarity_frame",
    "sweep_frame",
    "update_frame",
    "update_structure",
]

#: the epsilon grid of the intruder sweep: 0.05, 0.10, ..., 0.95
DEFAULT_EPSILONS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
#: r of the top/bottom subspaces for a dense update (an adapter uses its own rank)
DEFAULT_SUBSPACE_RANK = 8

UPDATE_COLUMNS = {
    "layer": "layer name",
    "rows": "rows m of the matrix",
    "cols": "columns n",
    "adapter_rank": "rank r of the LoRA factors (empty for a dense update)",
    "subspace_rank": "r of the top-r / bottom-r subspaces of W0 (capped at min(m, n))",
    "rel_norm": "||dW||_F / ||W0||_F",
    "norm_fro": "||dW||_F",
    "norm_2": "||dW||_2, the largest singular value of dW",
    "stable_rank": "||dW||_F^2 / ||dW||_2^2 (0 for dW = 0)",
    "effective_rank": "Roy & Vetterli: exp of the entropy of sigma_i / sum sigma (0 for dW = 0)",
    "rank_90": "fewest singular values holding 90% of ||dW||_F^2",
    "rank_99": "fewest singular values holding 99% of ||dW||_F^2",
    "gd_rank": "Gavish-Donoho optimal hard-threshold rank (unknown noise, exact omega)",
    "gd_threshold": "the Gavish-Donoho threshold tau = omega(beta) * median singular value",
    "top_energy": "share of ||dW||_F^2 in span U0[:, :r] x span V0[:, :r] (PiSSA's subspace)",
    "bottom_energy": "share of ||dW||_F^2 in the bottom-r singular pair of W0 (MiLoRA's)",
    "top_energy_left": "share of ||dW||_F^2 in span U0[:, :r] (output side only)",
    "top_energy_right": "share of ||dW||_F^2 in span V0[:, :r] (input side only)",
    "bottom_energy_left": "share in span U0[:, -r:]",
    "bottom_energy_right": "share in span V0[:, -r:]",
    "chance_energy": "(r/m)(r/n): what a random update puts in an r x r subspace pair",
    "angle_k": "k of the top-k subspaces compared by principal angles",
    "principal_left": "mean cosine of the principal angles, top-k left subspaces of W0 and W",
    "principal_right": "the same for the right subspaces",
    "principal_min_left": "smallest of those cosines (largest angle), left",
    "intruder_k": "leading singular vectors of W examined (peft's top_k, capped at min(m, n))",
    "intruder_epsilon": "threshold on max |cos| (peft's threshold_epsilon)",
    "intruders": "left intruder count: top-k u_i of W with max_j |<u_i, u0_j>| < epsilon",
    "intruders_right": "right intruder count (v_i against V0)",
    "intruder_sigma_max": "largest singular value of W among the left intruders (0: none)",
    "top_method": "exact (LAPACK SVD of W) or randomized (top-k sketch)",
    "top_bound": "largest residual bound of W's top-k triplets (rounding level when exact)",
}


@dataclass(frozen=True)
class UpdateStructure:
    """Structure of one update and the intruders it made; see :data:`UPDATE_COLUMNS`.

    The tuples hold the per-index values behind the counts: ``intruder_indices`` (0-based
    into :math:`W`'s triplets), their ``intruder_sigma``, ``intruder_max_cos`` for each of the
    top ``intruder_k`` vectors, the sweep's ``sweep_counts`` at ``sweep_epsilons`` (and the
    ``_right`` variants), and the principal cosines themselves.
    """

    layer: str
    rows: int
    cols: int
    adapter_rank: int | None
    subspace_rank: int
    rel_norm: float
    norm_fro: float
    norm_2: float
    stable_rank: float
    effective_rank: float
    rank_90: int
    rank_99: int
    gd_rank: int
    gd_threshold: float
    top_energy: float
    bottom_energy: float
    top_energy_left: float
    top_energy_right: float
    bottom_energy_left: float
    bottom_energy_right: float
    chance_energy: float
    angle_k: int
    principal_cosines_left: tuple[float, ...]
    principal_cosines_right: tuple[float, ...]
    intruder_k: int
    intruder_epsilon: float
    intruder_indices: tuple[int, ...]
    intruder_sigma: tuple[float, ...]
    intruder_max_cos: tuple[float, ...]
    intruder_indices_right: tuple[int, ...]
    intruder_sigma_right: tuple[float, ...]
    intruder_max_cos_right: tuple[float, ...]
    sweep_epsilons: tuple[float, ...]
    sweep_counts: tuple[int, ...]
    sweep_counts_right: tuple[int, ...]
    top_method: str
    top_bound: float

    @property
    def intruders(self) -> int:
        """Left intruder count."""
        return len(self.intruder_indices)

    @property
    def intruders_right(self) -> int:
        """Right intruder count."""
        return len(self.intruder_indices_right)

    def row(self) -> dict[str, Any]:
        """One tidy row: the scalar columns of :data:`UPDATE_COLUMNS`, in that order."""
        left, right = self.principal_cosines_left, self.principal_cosines_right
        values = asdict(self)
        values.update(
            principal_left=sum(left) / len(left) if left else math.nan,
            principal_right=sum(right) / len(right) if right else math.nan,
            principal_min_left=min(left) if left else math.nan,
            intruders=self.intruders,
            intruders_right=self.intruders_right,
            intruder_sigma_max=max(self.intruder_sigma, default=0.0),
        )
        return {name: values[name] for name in UPDATE_COLUMNS}

    def to_dict(self) -> dict[str, Any]:
        """Every field (tuples as lists) plus the counts: JSON-ready."""
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}
        out["intruders"] = self.intruders
        out["intruders_right"] = self.intruders_right
        return out


def _floats(t: Tensor) -> tuple[float, ...]:
    return tuple(float(x) for x in t.detach().cpu().tolist())


def _zero_if_nan(x: float) -> float:
    return 0.0 if math.isnan(x) else x


def update_structure(
    w0: Tensor,
    w: Tensor | None = None,
    *,
    lora: tuple[Tensor, Tensor, float] | None = None,
    layer: str = "",
    subspace_rank: int | None = None,
    angle_k: int = 10,
    intruder_k: int = 10,
    intruder_epsilon: float = 0.5,
    epsilons: Sequence[float] = DEFAULT_EPSILONS,
    base: SVD | None = None,
    top: Literal["exact", "randomized"] = "exact",
    niter: int = 6,
    seed: int = 0,
) -> UpdateStructure:
    r"""The :class:`UpdateStructure` of :math:`W_0 \to W` (dense) or :math:`W_0 \to W_0 + sBA` (``lora``).

    Args:
        w0: pre-trained matrix ``(m, n)`` (any float dtype and device; computed in float64
            there).
        w: fine-tuned matrix of the same shape; give this or ``lora``.
        lora: ``(B, A, s)`` with ``B (m, r)``, ``A (r, n)``: the update's spectrum then comes
            from the factors.
        layer: name stored in the record.
        subspace_rank: r of the top/bottom subspaces; default the adapter's r, else
            :data:`DEFAULT_SUBSPACE_RANK`; capped at :math:`\min(m, n)`.
        angle_k: k of the principal angles between top-k subspaces (capped likewise).
        intruder_k: peft's ``top_k``, capped at :math:`\min(m, n)` (peft slices likewise).
        intruder_epsilon: peft's ``threshold_epsilon``, in ``(0, 1]``.
        epsilons: the sweep's thresholds.
        base: the thin SVD of ``w0`` with both ``U`` and ``V`` (all :math:`\min(m, n)`
            vectors, float64), to reuse across several fine-tunes of one base.
        top: ``"exact"`` (LAPACK SVD of :math:`W`) or ``"randomized"`` (the leading
            ``max(angle_k, intruder_k)`` triplets by a seeded sketch with ``niter`` power
            iterations; with ``lora``, :math:`W_0 + sBA` is never formed). ``top_bound``
            reports the largest residual bound either way.

    Raises:
        ConfigError: neither or both of ``w`` and ``lora``, shapes that disagree, a
            ``base`` without both vector sets, or k/epsilon/rank out of range.
    """
    if (w is None) == (lora is None):
        raise ConfigError("expected exactly one of w (a fine-tuned matrix) or lora (B, A, s)")
    if w0.ndim != 2:
        raise ConfigError(f"expected a 2-D pre-trained matrix, found shape {tuple(w0.shape)}")
    if top not in ("exact", "randomized"):
        raise ConfigError(f"expected top 'exact' or 'randomized', found {top!r}")
    for name, value in (("angle_k", angle_k), ("intruder_k", intruder_k)):
        if value < 1:
            raise ConfigError(f"expected {name} >= 1, found {value}")
    m, n = int(w0.shape[0]), int(w0.shape[1])
    small = min(m, n)
    dtype = torch.float64
    w0d = w0.to(dtype)
    op: LowRankSum | None = None
    if lora is not None:
        b, a, scale = lora
        op = LowRankSum(w0d, b, a, scale=scale)
        update: Tensor | LowRankSum = LowRankSum(None, b, a, scale=scale, dtype=dtype)
        adapter_rank: int | None = int(b.shape[1])
    else:
        w = cast(Tensor, w)
        if tuple(w.shape) != (m, n):
            raise ConfigError(f"expected W of shape {(m, n)} like W0, found {tuple(w.shape)}")
        update = w.to(device=w0d.device, dtype=dtype) - w0d
        adapter_rank = None

    if base is None:
        base = svd(w0d, vectors="both", method="svd")
    if base.U is None or base.V is None or base.S.shape[0] != small:
        raise ConfigError(f"expected a thin SVD of W0 with U, V and {small} singular values")
    u0, v0 = base.U.to(w0d.device, dtype), base.V.to(w0d.device, dtype)

    # spectrum, norms and ranks of dW
    s_dw = update_singular_values(update)
    norm_fro = update_frobenius(update)
    norm_w0 = float(base.S.norm())
    zero = norm_fro == 0.0
    r = min(subspace_rank or adapter_rank or DEFAULT_SUBSPACE_RANK, small)
    if r < 1:
        raise ConfigError(f"expected subspace_rank >= 1, found {subspace_rank}")

    # top-k triplets of W
    kk = min(max(angle_k, intruder_k), small)
    if top == "randomized":
        if op is not None:
            tri = top_singular(op, kk, method="randomized", niter=niter, seed=seed)
        else:
            tri = randomized_svd(cast(Tensor, w).to(w0d.device), kk, niter=niter, seed=seed)
        s_w, u_w, v_w, bound = tri.S, tri.U, tri.V, tri.bound
    else:
        w_dense = op.dense() if op is not None else cast(Tensor, w).to(w0d.device, dtype)
        full = svd(w_dense, vectors="both", method="svd")
        s_w, u_w, v_w = full.S[:kk], cast(Tensor, full.U)[:, :kk], cast(Tensor, full.V)[:, :kk]
        bound = triplet_residuals(w_dense, s_w, u_w, v_w)[2]

    ka, ki = min(angle_k, small), min(intruder_k, small)
    left = find_intruders(u0, u_w, s_w, k=ki, epsilon=intruder_epsilon)
    right = find_intruders(v0, v_w, s_w, k=ki, epsilon=intruder_epsilon)
    return UpdateStructure(
        layer=layer,
        rows=m,
        cols=n,
        adapter_rank=adapter_rank,
        subspace_rank=r,
        rel_norm=norm_fro / norm_w0 if norm_w0 else math.nan,
        norm_fro=norm_fro,
        norm_2=float(s_dw[0]) if s_dw.numel() else 0.0,
        stable_rank=0.0 if zero else _zero_if_nan(stable_rank(s_dw)),
        effective_rank=0.0 if zero else _zero_if_nan(effective_rank(s_dw)),
        rank_90=energy_rank(s_dw, 0.9),
        rank_99=energy_rank(s_dw, 0.99),
        gd_rank=gavish_donoho_rank(s_dw, (m, n)),
        gd_threshold=gavish_donoho_threshold(s_dw, (m, n)),
        top_energy=subspace_energy(update, u0[:, :r], v0[:, :r]),
        bottom_energy=subspace_energy(update, u0[:, -r:], v0[:, -r:]),
        top_energy_left=subspace_energy(update, u0[:, :r]),
        top_energy_right=subspace_energy(update, None, v0[:, :r]),
        bottom_energy_left=subspace_energy(update, u0[:, -r:]),
        bottom_energy_right=subspace_energy(update, None, v0[:, -r:]),
        chance_energy=chance_subspace_energy((m, n), r, r),
        angle_k=ka,
        principal_cosines_left=_floats(principal_cosines(u0[:, :ka], u_w[:, :ka])),
        principal_cosines_right=_floats(principal_cosines(v0[:, :ka], v_w[:, :ka])),
        intruder_k=ki,
        intruder_epsilon=float(intruder_epsilon),
        intruder_indices=tuple(int(i) for i in left.indices.tolist()),
        intruder_sigma=_floats(left.sigma),
        intruder_max_cos=_floats(left.max_cos),
        intruder_indices_right=tuple(int(i) for i in right.indices.tolist()),
        intruder_sigma_right=_floats(right.sigma),
        intruder_max_cos_right=_floats(right.max_cos),
        sweep_epsilons=tuple(float(e) for e in epsilons),
        sweep_counts=tuple(int(c) for c in intruder_sweep(left.max_cos, list(epsilons)).tolist()),
        sweep_counts_right=tuple(
            int(c) for c in intruder_sweep(right.max_cos, list(epsilons)).tolist()
        ),
        top_method=top,
        top_bound=float(bound.max()) if bound.numel() else 0.0,
    )


def update_frame(records: Sequence[UpdateStructure]) -> pd.DataFrame:
    """One row per record with the columns of :data:`UPDATE_COLUMNS` (empty frame, same columns, for none)."""
    return pd.DataFrame([rec.row() for rec in records], columns=list(UPDATE_COLUMNS))


def sweep_frame(records: Sequence[UpdateStructure]) -> pd.DataFrame:
    """Long form of the epsilon sweeps: ``layer, side, epsilon, intruders``, plus a ``model`` total per (side, epsilon)."""
    rows = [
        {"layer": rec.layer, "side": side, "epsilon": eps, "intruders": count}
        for rec in records
        for side, counts in (("left", rec.sweep_counts), ("right", rec.sweep_counts_right))
        for eps, count in zip(rec.sweep_epsilons, counts, strict=True)
    ]
    frame = pd.DataFrame(rows, columns=["layer", "side", "epsilon", "intruders"])
    if frame.empty:
        return frame
    total = frame.groupby(["side", "epsilon"], as_index=False)["intruders"].sum()
    total.insert(0, "layer", "(model)")
    return pd.concat([frame, total], ignore_index=True)


def similarity_frame(
    w0: Tensor,
    w: Tensor | None = None,
    *,
    lora: tuple[Tensor, Tensor, float] | None = None,
    k: int = 10,
    base_k: int | None = None,
    side: Literal["left", "right"] = "left",
    base: SVD | None = None,
) -> pd.DataFrame:
    r"""The paper's Figure 1 as a tidy table: :math:`|\langle t_i, b_j \rangle|` for W's top ``k`` and W0's vectors.

    Columns ``tuned`` (i, 0-based), ``base`` (j), ``abs_cos``; ``base_k`` keeps only W0's
    first ``base_k`` vectors (default all :math:`\min(m, n)`). Exact SVDs of both matrices
    (``base`` reuses W0's).
    """
    if (w is None) == (lora is None):
        raise ConfigError("expected exactly one of w (a fine-tuned matrix) or lora (B, A, s)")
    if side not in ("left", "right"):
        raise ConfigError(f"expected side 'left' or 'right', found {side!r}")
    w0d = w0.to(torch.float64)
    if lora is not None:
        w_dense = LowRankSum(w0d, lora[0], lora[1], scale=lora[2]).dense()
    else:
        w_dense = cast(Tensor, w).to(w0d.device, torch.float64)
        if w_dense.shape != w0d.shape:
            raise ConfigError(
                f"expected W of shape {tuple(w0d.shape)} like W0, found {tuple(w_dense.shape)}"
            )
    base = base if base is not None else svd(w0d, vectors="both", method="svd")
    tuned = svd(w_dense, vectors="both", method="svd")
    b_vec = base.V if side == "right" else base.U
    t_vec = tuned.V if side == "right" else tuned.U
    if b_vec is None or t_vec is None:
        raise ConfigError(f"expected a thin SVD of W0 with its {side} vectors")
    small = min(w0d.shape)
    cos = similarity_matrix(b_vec[:, : base_k or small], t_vec, min(k, small)).cpu()
    rows, cols = cos.shape
    return pd.DataFrame(
        {
            "tuned": torch.arange(rows).repeat_interleave(cols).tolist(),
            "base": torch.arange(cols).repeat(rows).tolist(),
            "abs_cos": cos.flatten().tolist(),
        }
    )
