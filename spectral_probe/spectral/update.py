r"""The structure of a weight update :math:`\Delta W = W - W_0`, dense or given by LoRA factors.

An update is a dense ``(m, n)`` tensor or a :class:`~spectral_probe.spectral.lowrank.LowRankSum`
without :math:`W_0` (:math:`\Delta W = sBA`); every function here gives the same number for
both (up to rounding), and the factored path never forms an :math:`m \times n` matrix.

* :func:`update_singular_values`: :math:`\sigma_i(\Delta W)`, through the factors when it has
  them (:func:`~spectral_probe.spectral.lowrank.factored_svd`), else LAPACK's ``svdvals``.
* :func:`update_frobenius`: :math:`\|\Delta W\|_F`; for factors
  :math:`s^2\|BA\|_F^2 = s^2 \operatorname{tr}\big((B^\top B)(A A^\top)\big)`.
* :func:`subspace_energy`: the share of :math:`\|\Delta W\|_F^2` inside a pair of subspaces,

  .. math:: E(L, R) = \frac{\|L^\top \Delta W R\|_F^2}{\|\Delta W\|_F^2} \in [0, 1],

  :math:`L` (``m x p``) and :math:`R` (``n x q``) with orthonormal columns; ``None`` for a side
  means the whole space (a one-sided share). With :math:`L = U^0_{:r}` and
  :math:`R = V^0_{:r}` (the top-:math:`r` singular vectors of :math:`W_0`) it is the update's
  energy in :math:`W_0`'s principal subspace (where PiSSA initialises LoRA); with the bottom
  :math:`r` (MiLoRA), its minor subspace. A random update puts
  :math:`E = (p/m)(q/n)` there on average (:func:`chance_subspace_energy`), the level to read
  the share against.

A zero update has no energy: its shares are 0 (not NaN), so frozen layers stay finite in tables.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from ..errors import ConfigError
from .lowrank import LowRankSum, factored_svd

__all__ = [
    "chance_subspace_energy",
    "subspace_energy",
    "update_frobenius",
    "update_shape",
    "update_singular_values",
]

Update = Tensor | LowRankSum


def _factored(update: Update) -> LowRankSum | None:
    if isinstance(update, LowRankSum):
        if update.w0 is not None:
            raise ConfigError(
                "expected an update s*B*A (LowRankSum with w0=None), found W0 + s*B*A"
            )
        return update
    if not isinstance(update, Tensor) or update.ndim != 2:
        shape = tuple(update.shape) if isinstance(update, Tensor) else type(update).__name__
        raise ConfigError(f"expected a 2-D update tensor or LoRA factors, found {shape}")
    return None


def update_shape(update: Update) -> tuple[int, int]:
    """``(m, n)`` of the update."""
    lr = _factored(update)
    if lr is not None:
        return lr.shape
    return int(update.shape[0]), int(update.shape[1])


def update_singular_values(update: Update, *, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Singular values of :math:`\Delta W`, descending.

    Factored: the :math:`\min(r, m, n)` values of the core (the rest are 0); dense: all
    :math:`\min(m, n)` (LAPACK ``svdvals``, accurate to :math:`\epsilon\sigma_1`).
    """
    lr = _factored(update)
    if lr is not None:
        return factored_svd(lr.b, lr.a, scale=lr.scale, dtype=dtype).S
    return torch.linalg.svdvals(cast(Tensor, update).to(dtype))


def update_frobenius(update: Update, *, dtype: torch.dtype = torch.float64) -> float:
    r""":math:`\|\Delta W\|_F`; from the factors :math:`|s|\sqrt{\operatorname{tr}((B^\top B)(AA^\top))}`."""
    lr = _factored(update)
    if lr is not None:
        b, a = lr.b.to(dtype), lr.a.to(dtype)
        return abs(lr.scale) * float(((b.mT @ b) * (a @ a.mT)).sum().clamp_min(0).sqrt())
    return float(cast(Tensor, update).to(dtype).norm())


def _check_basis(basis: Tensor | None, rows: int, side: str) -> None:
    if basis is not None and (basis.ndim != 2 or basis.shape[0] != rows):
        raise ConfigError(
            f"expected a {side} basis with {rows} rows, found shape {tuple(basis.shape)}"
        )


def subspace_energy(
    update: Update,
    left: Tensor | None = None,
    right: Tensor | None = None,
    *,
    dtype: torch.dtype = torch.float64,
) -> float:
    r""":math:`\|L^\top \Delta W R\|_F^2 / \|\Delta W\|_F^2`: the share of the update inside ``span(L) x span(R)``.

    Args:
        update: :math:`\Delta W`, dense ``(m, n)`` or factored.
        left: orthonormal columns ``(m, p)``, or ``None`` for all of :math:`\mathbb{R}^m`.
        right: orthonormal columns ``(n, q)``, or ``None`` for all of :math:`\mathbb{R}^n`.

    Returns:
        A share in ``[0, 1]``; 0 for a zero update.

    Example:
        >>> dw = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
        >>> subspace_energy(dw, left=torch.tensor([[1.0], [0.0]]))
        0.36
    """
    m, n = update_shape(update)
    _check_basis(left, m, "left")
    _check_basis(right, n, "right")
    lr = _factored(update)
    total = update_frobenius(update, dtype=dtype) ** 2
    if total == 0.0:
        return 0.0
    if lr is not None:
        b, a = lr.b.to(dtype), lr.a.to(dtype)
        bl = b if left is None else left.to(b.device, dtype).mT @ b  # (p, r)
        ar = a if right is None else a @ right.to(a.device, dtype)  # (r, q)
        inside = lr.scale**2 * float(((bl.mT @ bl) * (ar @ ar.mT)).sum())
    else:
        dw = cast(Tensor, update).to(dtype)
        if left is not None:
            dw = left.to(dw.device, dtype).mT @ dw
        if right is not None:
            dw = dw @ right.to(dw.device, dtype)
        inside = float(dw.square().sum())
    return min(max(inside / total, 0.0), 1.0)


def chance_subspace_energy(
    shape: tuple[int, int], left_dim: int | None, right_dim: int | None
) -> float:
    r"""Expected :func:`subspace_energy` of an isotropic random update: :math:`(p/m)(q/n)`.

    ``None`` for a side means the whole space (factor 1).

    Example:
        >>> chance_subspace_energy((100, 50), 10, 5)
        0.010000000000000002
    """
    m, n = shape
    left = 1.0 if left_dim is None else min(left_dim, m) / m
    right = 1.0 if right_dim is None else min(right_dim, n) / n
    return left * right
