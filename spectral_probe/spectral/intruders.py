r"""Intruder dimensions of a fine-tuned matrix, and their mitigation.

Shuttleworth et al. ("LoRA vs Full Fine-tuning: An Illusion of Equivalence", NeurIPS 2025)
compare the singular vectors of the fine-tuned :math:`W = W_0 + \Delta W` with those of the
pre-trained :math:`W_0`. With thin SVDs :math:`W_0 = U_0 \Sigma_0 V_0^\top` and
:math:`W = U \Sigma V^\top`, the :math:`k \times \min(m, n)` similarity matrix

.. math:: C_{ij} = |\langle u_i, u^0_j \rangle|, \qquad c_i = \max_j C_{ij}

(:func:`similarity_matrix`, Figure 1 of the paper; :func:`max_cosines`) measures how well the
:math:`i`-th singular vector of :math:`W` is explained by *any* pre-trained one. Among the top
:math:`k` vectors, :math:`i` is an **intruder** when :math:`c_i < \epsilon`
(:func:`find_intruders`). The defaults :math:`k = 10`, :math:`\epsilon = 0.5`, left vectors
are those of peft's detector (``peft/tuners/lora/intruders.py``, ``_calc_intruder_ids``); the
right-vector variant compares :math:`V` with :math:`V_0`. A random unit vector in
:math:`\mathbb{R}^m` has :math:`c \approx \sqrt{2\ln m / m}`, so :math:`\epsilon` must stay
above that level to mean anything.

**Mitigation** (peft ``reduce_intruder_dimension``): scale each intruder component of
:math:`W` by :math:`\lambda` (default 0.75),

.. math:: W' = W + (\lambda - 1) \sum_{i \in I} \sigma_i u_i v_i^\top, \qquad
   \Delta W' = \Delta W + (\lambda - 1) \sum_{i \in I} \sigma_i u_i v_i^\top

(:func:`scale_intruders`). For an adapter :math:`\Delta W = sBA`, :math:`\Delta W' / s` has rank
at most :math:`r + |I|`; peft refits rank-:math:`r` factors :math:`B' = U_r \Sigma_r^{1/2}`,
:math:`A' = \Sigma_r^{1/2} V_r^\top` from its truncated SVD. :func:`scale_intruders_factored`
does the same from the factors (stacked :math:`[B, \tfrac{\lambda - 1}{s} U_I \Sigma_I]` and
:math:`[A; V_I^\top]`, then :func:`~spectral_probe.spectral.lowrank.factored_svd`), never
forming :math:`\Delta W'`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import Tensor

from ..errors import ConfigError
from .lowrank import check_factors, factored_svd
from .svd import svd

__all__ = [
    "Intruders",
    "detect_intruders",
    "find_intruders",
    "intruder_sweep",
    "max_cosines",
    "scale_intruders",
    "scale_intruders_factored",
    "similarity_matrix",
]

Side = Literal["left", "right"]


@dataclass(frozen=True)
class Intruders:
    """Intruder dimensions among the top ``k`` singular vectors of a fine-tuned matrix.

    Attributes:
        indices: 0-based indices (into the fine-tuned matrix's singular triplets) of the
            intruders, ascending, ``(count,)`` int64.
        sigma: the fine-tuned singular values at ``indices``.
        max_cos: :math:`c_i` for each of the top ``k`` vectors, ``(k,)``.
        epsilon: the threshold used.
    """

    indices: Tensor
    sigma: Tensor
    max_cos: Tensor
    epsilon: float

    @property
    def count(self) -> int:
        """Number of intruders."""
        return int(self.indices.numel())


def _check_k(k: int, available: int) -> None:
    if k < 1:
        raise ConfigError(f"expected k >= 1 top singular vectors, found k = {k}")
    if k > available:
        raise ConfigError(f"expected k <= {available} (the singular vectors given), found k = {k}")


def similarity_matrix(base: Tensor, tuned: Tensor, k: int = 10) -> Tensor:
    r""":math:`C_{ij} = |\langle t_i, b_j \rangle|` for the first ``k`` columns ``t_i`` of ``tuned``.

    Args:
        base: pre-trained singular vectors as columns, ``(d, K)`` (all of them, for intruders).
        tuned: fine-tuned singular vectors as columns, ``(d, >= k)``, descending order.
        k: number of leading fine-tuned vectors.

    Returns:
        ``(k, K)`` in ``[0, 1]`` (for orthonormal columns).

    Example:
        >>> similarity_matrix(torch.eye(2), torch.eye(2)[:, [1, 0]], k=2).tolist()
        [[0.0, 1.0], [1.0, 0.0]]
    """
    if base.ndim != 2 or tuned.ndim != 2 or base.shape[0] != tuned.shape[0]:
        raise ConfigError(
            "expected two sets of singular vectors (d, K) and (d, k) with the same d, "
            f"found shapes {tuple(base.shape)} and {tuple(tuned.shape)}"
        )
    _check_k(k, tuned.shape[1])
    dtype = torch.promote_types(base.dtype, tuned.dtype)
    return (tuned[:, :k].to(dtype).mT @ base.to(dtype)).abs()


def max_cosines(base: Tensor, tuned: Tensor, k: int = 10) -> Tensor:
    r""":math:`c_i = \max_j |\langle t_i, b_j \rangle|`, ``(k,)`` (row maxima of :func:`similarity_matrix`)."""
    return similarity_matrix(base, tuned, k).max(dim=1).values


def find_intruders(
    base: Tensor, tuned: Tensor, sigma: Tensor, *, k: int = 10, epsilon: float = 0.5
) -> Intruders:
    r"""Intruders :math:`\{i < k : c_i < \epsilon\}` given both sets of singular vectors.

    Args:
        base: all pre-trained singular vectors of one side, ``(d, K)``.
        tuned: the fine-tuned vectors of the same side, descending, ``(d, >= k)``.
        sigma: the fine-tuned singular values, ``(>= k,)``.
        k: leading vectors examined (peft's ``top_k``, default 10).
        epsilon: threshold (peft's ``threshold_epsilon``, default 0.5).

    Example:
        >>> e = torch.eye(3)
        >>> t = torch.stack([torch.tensor([1.0, 1, 1]) / 3**0.5, e[:, 0], e[:, 1]], dim=1)
        >>> found = find_intruders(e, t, torch.tensor([3.0, 2, 1]), k=3, epsilon=0.6)
        >>> found.indices.tolist(), round(float(found.max_cos[0]), 4)
        ([0], 0.5774)
    """
    if not 0.0 < epsilon <= 1.0:
        raise ConfigError(f"expected epsilon in (0, 1], found {epsilon}")
    if sigma.ndim != 1 or sigma.shape[0] < k:
        raise ConfigError(
            f"expected at least k = {k} singular values, found shape {tuple(sigma.shape)}"
        )
    cos = max_cosines(base, tuned, k)
    idx = torch.nonzero(cos < epsilon).flatten()
    return Intruders(idx, sigma[idx.to(sigma.device)], cos, float(epsilon))


def intruder_sweep(max_cos: Tensor, epsilons: Sequence[float] | Tensor) -> Tensor:
    r"""Intruder count :math:`\#\{i : c_i < \epsilon\}` for each :math:`\epsilon`, ``(len(epsilons),)``.

    Example:
        >>> intruder_sweep(torch.tensor([0.1, 0.4, 0.9]), [0.05, 0.5, 1.0]).tolist()
        [0, 2, 3]
    """
    eps = torch.as_tensor(epsilons, dtype=max_cos.dtype, device=max_cos.device)
    return (max_cos[None, :] < eps[:, None]).sum(dim=1)


def detect_intruders(
    w0: Tensor,
    w: Tensor,
    *,
    k: int = 10,
    epsilon: float = 0.5,
    side: Side = "left",
    dtype: torch.dtype = torch.float64,
) -> tuple[Intruders, Tensor, Tensor, Tensor]:
    r"""Intruders of ``w`` against ``w0`` from dense matrices (LAPACK SVDs of both, ``dtype``).

    Returns:
        ``(intruders, U, S, V)``: the intruders of the chosen ``side`` and the thin SVD of
        ``w`` (columns), which :func:`scale_intruders` takes.

    Raises:
        ConfigError: shapes differ, or ``k > min(m, n)``.
    """
    if w0.ndim != 2 or w0.shape != w.shape:
        raise ConfigError(
            f"expected two 2-D matrices of one shape, found {tuple(w0.shape)} and {tuple(w.shape)}"
        )
    if side not in ("left", "right"):
        raise ConfigError(f"expected side 'left' or 'right', found {side!r}")
    _check_k(k, min(w.shape))
    base = svd(w0, vectors=side, method="svd", dtype=dtype)
    tuned = svd(w, vectors="both", method="svd", dtype=dtype)
    u, v = cast(Tensor, tuned.U), cast(Tensor, tuned.V)
    base_vectors = cast(Tensor, base.V if side == "right" else base.U)
    found = find_intruders(base_vectors, v if side == "right" else u, tuned.S, k=k, epsilon=epsilon)
    return found, u, tuned.S, v


def _components(u: Tensor, s: Tensor, v: Tensor, indices: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if u.ndim != 2 or v.ndim != 2 or s.ndim != 1 or not u.shape[1] == v.shape[1] == s.shape[0]:
        raise ConfigError(
            "expected a thin SVD U (m, k), S (k,), V (n, k), "
            f"found {tuple(u.shape)}, {tuple(s.shape)}, {tuple(v.shape)}"
        )
    idx = indices.to(device=u.device, dtype=torch.long)
    if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= s.shape[0]):
        raise ConfigError(f"expected intruder indices in [0, {s.shape[0]}), found {idx.tolist()}")
    return u[:, idx], s[idx], v[:, idx]


def scale_intruders(
    w: Tensor, u: Tensor, s: Tensor, v: Tensor, indices: Tensor, lam: float = 0.75
) -> Tensor:
    r""":math:`W' = W + (\lambda - 1)\sum_{i \in I} \sigma_i u_i v_i^\top`: intruder components scaled by :math:`\lambda`.

    Applied to :math:`\Delta W` instead of :math:`W` (same triplets, those of :math:`W`) it
    gives :math:`\Delta W'`, since the two differ by :math:`W_0`.

    Args:
        w: the matrix to correct, ``(m, n)``, in its own dtype.
        u: left singular vectors of the fine-tuned :math:`W` as columns ``(m, k)``, e.g. from
            :func:`detect_intruders`.
        s: its singular values ``(k,)``.
        v: its right singular vectors as columns ``(n, k)``.
        indices: :attr:`Intruders.indices`.
        lam: :math:`\lambda` (peft's ``mitigation_lambda``, default 0.75; 1 changes nothing).
    """
    ui, si, vi = _components(u, s, v, indices)
    if tuple(w.shape) != (u.shape[0], v.shape[0]):
        raise ConfigError(f"expected W of shape {(u.shape[0], v.shape[0])}, found {tuple(w.shape)}")
    correction = (lam - 1.0) * (ui * si) @ vi.mT
    return (w.to(correction.dtype) + correction).to(w.dtype)


def scale_intruders_factored(
    b: Tensor,
    a: Tensor,
    scale: float,
    u: Tensor,
    s: Tensor,
    v: Tensor,
    indices: Tensor,
    lam: float = 0.75,
    *,
    rank: int | None = None,
) -> tuple[Tensor, Tensor]:
    r"""New LoRA factors ``(B', A')`` with :math:`s B'A'` the rank-``rank`` truncation of :math:`\Delta W'`.

    :math:`\Delta W'/s = [B, \tfrac{\lambda - 1}{s} U_I \Sigma_I]\,[A; V_I^\top]`, whose SVD
    comes from the factors; :math:`B' = U_\rho \Sigma_\rho^{1/2}`,
    :math:`A' = \Sigma_\rho^{1/2} V_\rho^\top` with :math:`\rho` = ``rank`` (default: the
    adapter's :math:`r`, as peft; ``rank = r + |I|`` keeps :math:`\Delta W'` exactly). The
    factors are float64; cast them to the adapter's dtype when writing.

    Raises:
        ConfigError: bad shapes or indices, ``scale == 0`` or ``rank < 1``.
    """
    m, r, n = check_factors(b, a)
    ui, si, vi = _components(u, s, v, indices)
    if (ui.shape[0], vi.shape[0]) != (m, n):
        raise ConfigError(
            f"expected triplets of an ({m}, {n}) matrix, found {(ui.shape[0], vi.shape[0])}"
        )
    if scale == 0:
        raise ConfigError("expected a non-zero LoRA scaling, found 0")
    rank = r if rank is None else rank
    if rank < 1:
        raise ConfigError(f"expected rank >= 1, found {rank}")
    dtype = torch.float64
    left = torch.cat([b.to(ui.device, dtype), ((lam - 1.0) / scale) * (ui * si).to(dtype)], dim=1)
    right = torch.cat([a.to(ui.device, dtype), vi.mT.to(dtype)], dim=0)
    out = factored_svd(left, right, vectors="both")
    uu, ss, vv = cast(Tensor, out.U), out.S, cast(Tensor, out.V)
    keep = min(rank, ss.shape[0])
    root = ss[:keep].sqrt()
    b_new = uu[:, :keep] * root
    a_new = root[:, None] * vv[:, :keep].mT
    if keep < rank:  # pad to the requested rank with zero components
        b_new = torch.cat([b_new, b_new.new_zeros(m, rank - keep)], dim=1)
        a_new = torch.cat([a_new, a_new.new_zeros(rank - keep, n)], dim=0)
    return b_new, a_new
