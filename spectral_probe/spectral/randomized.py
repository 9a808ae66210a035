r"""The leading singular triplets by randomized SVD, with an a-posteriori bound per triplet.

Halko, Martinsson & Tropp (2011, SIAM Review 53(2), Algorithms 4.4 and 5.1). For
:math:`A \in \mathbb{R}^{m \times n}`, a target rank :math:`k` and :math:`\ell = k + p`
(``oversample`` :math:`p`):

1. draw a Gaussian :math:`\Omega \in \mathbb{R}^{n \times \ell}` (seeded, on the CPU, then moved
   to ``A``'s device, so the same seed gives the same start everywhere);
2. :math:`Q = \operatorname{qr}(A\Omega)`, then ``niter`` power iterations
   :math:`Q \leftarrow \operatorname{qr}(A\,\operatorname{qr}(A^\top Q))`, re-orthonormalised at
   every half step so that the small singular values are not lost to rounding;
3. :math:`B = Q^\top A` (``l x n``, formed as :math:`(A^\top Q)^\top`), its SVD
   :math:`B = \tilde U \Sigma V^\top`, and :math:`U = Q \tilde U`; keep the first :math:`k`.

The error of the range decreases like :math:`(\sigma_{k+1}/\sigma_k)^{2q+1}` with ``niter``
:math:`= q`, so slowly decaying spectra (those of trained weights) want several iterations.

**Bounds.** Each returned triplet comes with its residuals

.. math:: r^u_i = \|A v_i - \sigma_i u_i\|_2, \qquad r^v_i = \|A^\top u_i - \sigma_i v_i\|_2,

computed afresh with one more product by :math:`A` and by :math:`A^\top`. The symmetric
:math:`H = \begin{pmatrix} 0 & A \\ A^\top & 0 \end{pmatrix}` has eigenvalues :math:`\pm\sigma_j(A)`
(and :math:`|m - n|` zeros), and :math:`x = (u_i; v_i)/\sqrt2` is a unit vector with
:math:`\|Hx - \sigma_i x\| = \sqrt{((r^u_i)^2 + (r^v_i)^2)/2} =: \delta_i`, so **some singular
value of** :math:`A` (the zeros of a rectangular :math:`A` included) **lies within**
:math:`\delta_i` **of** :math:`\sigma_i` (Weyl / Bauer-Fike for symmetric matrices). Moreover
:math:`\sigma_i \le \sigma_i(A)` for every :math:`i`, since :math:`Q^\top A` is a compression
of :math:`A` (Cauchy interlacing): the estimates err low.

The matrix may be a dense tensor on any device or any :class:`LinearOperator` (for instance
:class:`~spectral_probe.spectral.lowrank.LowRankSum`, :math:`W_0 + sBA` without forming it).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = [
    "BlockedOperator",
    "DenseOperator",
    "LinearOperator",
    "RandomizedSVD",
    "randomized_svd",
    "triplet_residuals",
]


@runtime_checkable
class LinearOperator(Protocol):
    """A matrix known through its products: ``matmul(x) = A @ x`` and ``rmatmul(x) = A.T @ x``."""

    @property
    def shape(self) -> tuple[int, int]:
        """``(m, n)``."""
        ...

    @property
    def dtype(self) -> torch.dtype:
        """Working precision of the products."""
        ...

    @property
    def device(self) -> torch.device:
        """Where the products are computed."""
        ...

    def matmul(self, x: Tensor) -> Tensor:
        """:math:`A x` for ``x`` of shape ``(n, l)``."""
        ...

    def rmatmul(self, x: Tensor) -> Tensor:
        """:math:`A^\\top x` for ``x`` of shape ``(m, l)``."""
        ...


class DenseOperator:
    """A dense 2-D tensor as a :class:`LinearOperator`, cast once to ``dtype``."""

    def __init__(self, a: Tensor, dtype: torch.dtype = torch.float64) -> None:
        if a.ndim != 2:
            raise ConfigError(f"expected a 2-D matrix, found shape {tuple(a.shape)}")
        self.a = a.to(dtype)

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.a.shape[0]), int(self.a.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.a.dtype

    @property
    def device(self) -> torch.device:
        return self.a.device

    def matmul(self, x: Tensor) -> Tensor:
        return self.a @ x

    def rmatmul(self, x: Tensor) -> Tensor:
        return self.a.mT @ x


class BlockedOperator:
    """A stored matrix (any floating dtype, memory-mapped or not) whose products are formed from
    blocks of rows upcast to ``dtype`` one at a time: never a whole copy in ``dtype``.

    With ``minus``, the operator is ``a - minus`` (each block's difference formed on its own).

    Args:
        a: the 2-D matrix, as stored.
        dtype: working precision of the products (float32 for the range finder, float64 for
            the final projection and the residuals).
        minus: an optional matrix of the same shape to subtract.
        block_rows: rows upcast at a time.
        device: where the products are computed (default: ``a``'s device).
    """

    def __init__(
        self,
        a: Tensor,
        dtype: torch.dtype = torch.float32,
        *,
        minus: Tensor | None = None,
        block_rows: int = 2048,
        device: torch.device | str | None = None,
    ) -> None:
        if a.ndim != 2 or (minus is not None and minus.shape != a.shape):
            found = tuple(a.shape) if minus is None else (tuple(a.shape), tuple(minus.shape))
            raise ConfigError(f"expected a 2-D matrix (and one of the same shape), found {found}")
        if block_rows < 1:
            raise ConfigError(f"expected block_rows >= 1, found {block_rows}")
        self.a, self.minus, self.block_rows = a, minus, block_rows
        self._dtype = dtype
        self._device = torch.device(device) if device is not None else a.device

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.a.shape[0]), int(self.a.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def device(self) -> torch.device:
        return self._device

    def _block(self, first: int) -> Tensor:
        part = self.a[first : first + self.block_rows].to(self._device, self._dtype)
        if self.minus is not None:
            part = part - self.minus[first : first + self.block_rows].to(self._device, self._dtype)
        return part

    def matmul(self, x: Tensor) -> Tensor:
        x = x.to(self._device, self._dtype)
        out = x.new_empty(self.shape[0], x.shape[1])
        for first in range(0, self.shape[0], self.block_rows):
            torch.matmul(self._block(first), x, out=out[first : first + self.block_rows])
        return out

    def rmatmul(self, x: Tensor) -> Tensor:
        x = x.to(self._device, self._dtype)
        out = x.new_zeros(self.shape[1], x.shape[1])
        for first in range(0, self.shape[0], self.block_rows):
            out.addmm_(self._block(first).mT, x[first : first + self.block_rows])
        return out

    def frobenius(self) -> float:
        """:math:`\\|A\\|_F`, accumulated in float64 block by block."""
        total = 0.0
        for first in range(0, self.shape[0], self.block_rows):
            part = self.a[first : first + self.block_rows].to(self._device, torch.float64)
            if self.minus is not None:
                part = part - self.minus[first : first + self.block_rows].to(
                    self._device, torch.float64
                )
            total += float(part.square().sum())
        return total**0.5


class RandomizedSVD(NamedTuple):
    """The leading ``k`` triplets and their residual bounds.

    Attributes:
        S: singular value estimates ``(k,)``, descending; each :math:`\\le \\sigma_i(A)`.
        U: left singular vectors ``(m, k)``.
        V: right singular vectors ``(n, k)``.
        residual_left: :math:`\\|A v_i - \\sigma_i u_i\\|` ``(k,)``.
        residual_right: :math:`\\|A^\\top u_i - \\sigma_i v_i\\|` ``(k,)``.
        bound: :math:`\\delta_i = \\sqrt{(r^u_i{}^2 + r^v_i{}^2)/2}`: a singular value of ``A``
            lies within it of ``S[i]``.
    """

    S: Tensor
    U: Tensor
    V: Tensor
    residual_left: Tensor
    residual_right: Tensor
    bound: Tensor


def _operator(a: Tensor | LinearOperator, dtype: torch.dtype) -> LinearOperator:
    if isinstance(a, Tensor):
        return DenseOperator(a, dtype)
    if isinstance(a, LinearOperator):
        return a
    raise ConfigError(f"expected a 2-D tensor or a LinearOperator, found {type(a).__name__}")


def triplet_residuals(
    a: Tensor | LinearOperator, s: Tensor, u: Tensor, v: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Residuals ``(r_u, r_v, delta)`` of the triplets ``(s[i], u[:, i], v[:, i])`` of ``a``.

    :math:`r^u_i = \\|A v_i - \\sigma_i u_i\\|`, :math:`r^v_i = \\|A^\\top u_i - \\sigma_i v_i\\|`,
    :math:`\\delta_i = \\sqrt{(r^u_i{}^2 + r^v_i{}^2)/2}` (see the module docstring).
    """
    op = _operator(a, u.dtype)
    r_u = (op.matmul(v) - u * s).norm(dim=0)
    r_v = (op.rmatmul(u) - v * s).norm(dim=0)
    return r_u, r_v, ((r_u.square() + r_v.square()) / 2).sqrt()


def randomized_svd(
    a: Tensor | LinearOperator,
    k: int,
    *,
    oversample: int = 10,
    niter: int = 4,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    refine: LinearOperator | None = None,
) -> RandomizedSVD:
    """Leading ``k`` singular triplets of ``a`` by randomized range finding with power iterations.

    Args:
        a: a 2-D tensor on any device, or a :class:`LinearOperator` (used in its own dtype and
            device).
        k: number of triplets, ``1 <= k <= min(m, n)``.
        oversample: extra columns :math:`p` of the sketch (``l = min(k + p, min(m, n))``).
        niter: power iterations :math:`q`.
        seed: seed of the Gaussian start (drawn on the CPU, so results agree across devices
            up to rounding).
        dtype: working precision for a dense ``a``; float64 by default.
        refine: the same matrix as an operator in a higher precision (for instance
            :class:`BlockedOperator` in float64 beside a float32 ``a``): the range is found
            with ``a``, then re-orthonormalised, projected and checked with ``refine`` (one
            product for the core, two for the residuals), so the values and the residual bound
            carry ``refine``'s rounding, not ``a``'s.

    Returns:
        :class:`RandomizedSVD`, with the per-triplet residuals and bound.

    Raises:
        ConfigError: ``k`` outside ``[1, min(m, n)]`` or negative ``oversample``/``niter``.

    Example:
        >>> out = randomized_svd(torch.diag(torch.tensor([5.0, 3.0, 1.0, 0.5])), 2)
        >>> [round(x, 6) for x in out.S.tolist()], bool(out.bound.max() < 1e-10)
        ([5.0, 3.0], True)
    """
    op = _operator(a, dtype)
    m, n = op.shape
    if not 1 <= k <= min(m, n):
        raise ConfigError(f"expected 1 <= k <= min(m, n) = {min(m, n)}, found k = {k}")
    if oversample < 0 or niter < 0:
        raise ConfigError(f"expected oversample, niter >= 0, found {oversample}, {niter}")
    width = min(k + oversample, m, n)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    omega = torch.randn(n, width, generator=gen, dtype=op.dtype).to(op.device)
    q = torch.linalg.qr(op.matmul(omega)).Q
    for _ in range(niter):
        q = torch.linalg.qr(op.rmatmul(q)).Q
        q = torch.linalg.qr(op.matmul(q)).Q
    if refine is not None:
        if tuple(refine.shape) != (m, n):
            raise ConfigError(f"expected refine of shape {(m, n)}, found {tuple(refine.shape)}")
        op = refine
        q = torch.linalg.qr(q.to(op.device, op.dtype)).Q
    bt = op.rmatmul(q)  # (n, l) = (Q^T A)^T
    p, s, wh = torch.linalg.svd(bt, full_matrices=False)  # B^T = P S W^T, so B = W S P^T
    u = q @ wh.mT[:, :k]
    v = p[:, :k]
    s = s[:k]
    r_u, r_v, bound = triplet_residuals(op, s, u, v)
    return RandomizedSVD(s, u, v, r_u, r_v, bound)
