r"""Spectra of low-rank updates from their factors: :math:`\Delta W = s\,BA` never formed.

A LoRA update is :math:`\Delta W = s\,BA` with :math:`B \in \mathbb{R}^{m \times r}`,
:math:`A \in \mathbb{R}^{r \times n}`, :math:`r \ll \min(m, n)` and the scaling
:math:`s = \alpha / r` (or :math:`\alpha/\sqrt r` with rsLoRA; peft ``tuners/lora/layer.py``).
With the thin QR factorisations :math:`B = Q_B R_B` and :math:`A^\top = Q_A R_A`,

.. math:: \Delta W = Q_B\,(s R_B R_A^\top)\,Q_A^\top, \qquad
   s R_B R_A^\top = U_c \Sigma V_c^\top \;\Rightarrow\;
   \Delta W = (Q_B U_c)\,\Sigma\,(Q_A V_c)^\top,

so the nonzero singular values of :math:`\Delta W` are those of the :math:`r \times r` core and
its singular vectors are :math:`Q_B U_c` and :math:`Q_A V_c` (:func:`factored_svd`). Cost:
:math:`O((m + n) r^2)`, against :math:`O(mn\min(m,n))` for a dense SVD; the core's SVD is
LAPACK's, so the values carry its :math:`\epsilon\sigma_1` accuracy.

:class:`LowRankSum` is :math:`W_0 + sBA` as a
:class:`~spectral_probe.spectral.randomized.LinearOperator`
(:math:`x \mapsto W_0 x + s B (A x)`), so the leading triplets of the fine-tuned matrix come
from :func:`~spectral_probe.spectral.randomized.randomized_svd` without an :math:`m \times n`
product (:func:`top_singular`). The dense path (forming :math:`W_0 + sBA` once, then an exact
SVD) is used when the whole spectrum is wanted or the sketch would be a large part of it:
``method="auto"`` picks it when :math:`k + p > \min(m, n)/4`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from .randomized import RandomizedSVD, randomized_svd, triplet_residuals
from .svd import SVD, Vectors

__all__ = ["LowRankSum", "check_factors", "factored_svd", "top_singular"]


def check_factors(b: Tensor, a: Tensor) -> tuple[int, int, int]:
    """``(m, r, n)`` of factors ``B (m, r)`` and ``A (r, n)``, or one clear :class:`ConfigError`."""
    if b.ndim != 2 or a.ndim != 2 or b.shape[1] != a.shape[0]:
        raise ConfigError(
            "expected LoRA factors B (m, r) and A (r, n) with the same r, "
            f"found shapes {tuple(b.shape)} and {tuple(a.shape)}"
        )
    return int(b.shape[0]), int(b.shape[1]), int(a.shape[1])


def factored_svd(
    b: Tensor,
    a: Tensor,
    *,
    scale: float = 1.0,
    vectors: Vectors = "none",
    dtype: torch.dtype = torch.float64,
) -> SVD:
    r"""Thin SVD of :math:`\Delta W = s\,BA` through QR of the factors and an SVD of the core.

    Args:
        b: ``B``, shape ``(m, r)``.
        a: ``A``, shape ``(r, n)``.
        scale: :math:`s`.
        vectors: which singular vectors of :math:`\Delta W` to return.
        dtype: working precision (float64 by default).

    Returns:
        :class:`~spectral_probe.spectral.svd.SVD` with :math:`\min(r, m, n)` values, descending;
        the other :math:`\min(m, n) - \min(r, m, n)` singular values of :math:`\Delta W` are 0.
        ``U`` is ``(m, min(r, m, n))`` and ``V`` ``(n, min(r, m, n))``.

    Example:
        >>> b = torch.tensor([[1.0], [0.0]]); a = torch.tensor([[0.0, 2.0, 0.0]])
        >>> factored_svd(b, a, scale=3.0).S.tolist()
        [6.0]
    """
    check_factors(b, a)
    b, a = b.to(dtype), a.to(dtype)
    qb, rb = torch.linalg.qr(b)
    qa, ra = torch.linalg.qr(a.mT)
    core = float(scale) * (rb @ ra.mT)
    if vectors == "none":
        return SVD(torch.linalg.svdvals(core), None, None)
    uc, s, vch = torch.linalg.svd(core, full_matrices=False)
    u = qb @ uc if vectors in ("left", "both") else None
    v = qa @ vch.mT if vectors in ("right", "both") else None
    return SVD(s, u, v)


class LowRankSum:
    r""":math:`W_0 + s\,BA` (or :math:`s\,BA` alone with ``w0=None``) as a linear operator.

    Products cost :math:`O(mn\ell + (m + n)r\ell)` for ``l`` columns and never build the
    :math:`m \times n` update. Tensors are cast once to ``dtype`` on ``w0``'s (or ``b``'s)
    device.
    """

    def __init__(
        self,
        w0: Tensor | None,
        b: Tensor,
        a: Tensor,
        *,
        scale: float = 1.0,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        m, _, n = check_factors(b, a)
        if w0 is not None and tuple(w0.shape) != (m, n):
            raise ConfigError(
                f"expected W0 of shape {(m, n)} to match B @ A, found {tuple(w0.shape)}"
            )
        device = w0.device if w0 is not None else b.device
        self.w0 = None if w0 is None else w0.to(dtype)
        self.b = b.to(device=device, dtype=dtype)
        self.a = a.to(device=device, dtype=dtype)
        self.scale = float(scale)
        self._shape = (m, n)

    @property
    def shape(self) -> tuple[int, int]:
        return self._shape

    @property
    def dtype(self) -> torch.dtype:
        return self.b.dtype

    @property
    def device(self) -> torch.device:
        return self.b.device

    def matmul(self, x: Tensor) -> Tensor:
        out = self.scale * (self.b @ (self.a @ x))
        return out if self.w0 is None else self.w0 @ x + out

    def rmatmul(self, x: Tensor) -> Tensor:
        out = self.scale * (self.a.mT @ (self.b.mT @ x))
        return out if self.w0 is None else self.w0.mT @ x + out

    def update(self) -> Tensor:
        r"""The dense update :math:`s\,BA`, ``(m, n)``."""
        return self.scale * (self.b @ self.a)

    def dense(self) -> Tensor:
        r"""The dense :math:`W_0 + s\,BA` (or the update alone), ``(m, n)``."""
        return self.update() if self.w0 is None else self.w0 + self.update()


def top_singular(
    op: LowRankSum,
    k: int,
    *,
    method: Literal["auto", "randomized", "dense"] = "auto",
    oversample: int = 10,
    niter: int = 4,
    seed: int = 0,
) -> RandomizedSVD:
    r"""Leading ``k`` triplets of :math:`W_0 + sBA`, with the residual bound of each.

    ``method="randomized"`` sketches the operator (:func:`randomized_svd`; the sum is never
    formed); ``"dense"`` forms :math:`W_0 + sBA` once and takes LAPACK's exact SVD;
    ``"auto"`` is randomized when :math:`k + p \le \min(m, n)/4`, dense otherwise. Either way the
    residuals :math:`\|Wv_i - \sigma_i u_i\|`, :math:`\|W^\top u_i - \sigma_i v_i\|` are computed
    against the operator.

    Raises:
        ConfigError: ``k`` outside ``[1, min(m, n)]`` or an unknown method.
    """
    m, n = op.shape
    if not 1 <= k <= min(m, n):
        raise ConfigError(f"expected 1 <= k <= min(m, n) = {min(m, n)}, found k = {k}")
    if method not in ("auto", "randomized", "dense"):
        raise ConfigError(f"expected method 'auto', 'randomized' or 'dense', found {method!r}")
    if method == "randomized" or (method == "auto" and 4 * (k + oversample) <= min(m, n)):
        return randomized_svd(op, k, oversample=oversample, niter=niter, seed=seed)
    u, s, vh = torch.linalg.svd(op.dense(), full_matrices=False)
    u, s, v = u[:, :k], s[:k], vh[:k].mT
    r_u, r_v, bound = triplet_residuals(op, s, u, v)
    return RandomizedSVD(s, u, v, r_u, r_v, bound)
