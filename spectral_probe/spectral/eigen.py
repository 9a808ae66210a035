r"""Symmetric eigensolvers on small Gram matrices: the one place the package calls ``eigh``.

The squared singular values of a ``b x d`` matrix :math:`F` are the eigenvalues of the Gram
matrix :math:`F F^\top` (``b x b``) or :math:`F^\top F` (``d x d``), whichever is smaller:

.. math::

    \sigma_i^2(F) = \lambda_i(F F^\top) = \lambda_i(F^\top F), \qquad i \le \min(b, d).

For a fine-tuning batch (``b = 48``, ``d = 2048``) that is a 48 x 48 symmetric eigenproblem
after one :math:`b^2 d` product, instead of an SVD of the whole matrix. This module makes the
precision, batching, device and threading choices for those small problems once:

* :func:`eigh` and :func:`eigvalsh`: every eigenpair / eigenvalue, batched (``eigvalsh``
  with LAPACK on one CPU thread, :func:`one_lapack_thread`).
* :func:`smallest_eigenpairs_host` and :func:`smallest_eigenpairs_device`: the ``k`` smallest
  eigenpairs of the smaller Gram of a feature matrix (BSS), by LAPACK's ``dsyevr`` on the
  host or ``torch.linalg.eigh`` on the tensor's device; :func:`solved_on_host` is the choice.

Precision (measured by ``bench/bench_bss.py`` against NumPy's float64 SVD): a float64 Gram
gives the small eigenvalues to ~1e-15 of :math:`\sigma_{\max}^2`; a float32 Gram to ~2e-7 of
:math:`\sigma_{\max}^2` (relative error ~1e-7 on ordinary feature batches, but no relative
accuracy left once :math:`\sigma_{\min}^2 < 10^{-6} \sigma_{\max}^2`). ``"auto"`` takes the
float32 Gram on CPU, where the float64 product costs ~1.5x, and redoes it in float64 when the
k smallest eigenvalues fall below ``1e-3 trace(G)`` (worst relative error then ~2e-4); on
other devices it always uses float64 (cheap there, and immune to TF32 matmul settings), as it
does for float64 features.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

try:
    from scipy.linalg import lapack as _lapack
except ImportError:  # pragma: no cover - scipy is a dependency
    _lapack = None

__all__ = [
    "AUTO_FALLBACK",
    "CUDA_EIGH_ON_CPU_MAX_N",
    "PRECISIONS",
    "COORDINATES_TRIDIAGONAL_MIN_N",
    "eigh",
    "eigh_coordinates",
    "eigvalsh",
    "gram",
    "one_lapack_thread",
    "smallest_eigenpairs_device",
    "smallest_eigenpairs_host",
    "solved_on_host",
]

#: Precisions of the Gram matrix for the smallest eigenpairs.
PRECISIONS = ("auto", "float64", "float32")
#: ``"auto"`` redoes a float32 Gram in float64 when sum(k smallest) < this * trace(G).
AUTO_FALLBACK = 1e-3
#: On CUDA, Grams up to this size are solved by LAPACK on the CPU: copying 48 x 48 values
#: there and back plus ``dsyevr`` takes ~0.15 ms on an H200 host, the GPU solver ~0.65 ms.
#: Set to 0 to always use ``torch.linalg.eigh`` on the GPU.
CUDA_EIGH_ON_CPU_MAX_N = 256


@contextlib.contextmanager
def one_lapack_thread(device: torch.device) -> Iterator[None]:
    """Run CPU work on one intra-op thread, then restore the previous setting.

    The eigensolvers here work on matrices of a few dozen to a few hundred rows: far too
    small to gain from threads, and on a busy machine each parallel region of such a small op
    waits for a descheduled worker thread (measured on 2 shared cores: 60 ms per BSS step
    with 2 threads, 0.6 ms with one; a 512 x 512 ``eigvalsh`` 0.03 s on one thread, 6-8 s on
    two busy cores). GPU solvers are unaffected.

    Example:
        >>> with one_lapack_thread(torch.device("cpu")):
        ...     torch.get_num_threads()
        1
    """
    previous = torch.get_num_threads()
    if device.type != "cpu" or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def gram(x: Tensor, *, left: bool) -> Tensor:
    r""":math:`X X^\top` if ``left`` else :math:`X^\top X` (batched over leading dimensions).

    A 2-D CPU float matrix outside autograd goes through NumPy, whose ``a @ a.T`` is BLAS's
    symmetric rank-k update ``syrk``: half the flops of the general product that
    ``torch.matmul`` runs (measured by ``bench/bench_transferability.py``: a 10,000 x 2048
    float64 :math:`F^\top F` in 0.82 s against 1.67 s on one thread). Batched, CUDA and
    autograd inputs use ``torch.matmul``. NumPy's BLAS keeps its own thread pool, so code that
    already runs one single-threaded layer per worker thread (``compare_weights``) forms its
    Grams with ``torch.matmul`` instead (measured: syrk there oversubscribes the cores).

    Example:
        >>> gram(torch.tensor([[1.0, 2.0]]), left=True)
        tensor([[5.]])
    """
    if (
        x.ndim == 2
        and x.device.type == "cpu"
        and x.dtype in (torch.float32, torch.float64)
        and not (x.requires_grad and torch.is_grad_enabled())
        and min(x.shape) > 64
    ):
        a = x.detach().numpy()
        if left:
            return torch.from_numpy(a @ a.T)
        at = a.T
        return torch.from_numpy(at @ at.T)
    return x @ x.mT if left else x.mT @ x


def eigh(g: Tensor) -> tuple[Tensor, Tensor]:
    r"""All eigenpairs :math:`G = Q \operatorname{diag}(\lambda) Q^\top` of symmetric ``g``.

    ``torch.linalg.eigh`` (LAPACK ``syevd`` on CPU, cuSOLVER on CUDA) on ``g``'s device and
    dtype, differentiable by autograd. The thread count is the caller's: wrap the call in
    :func:`one_lapack_thread` for small matrices on a shared CPU.

    Args:
        g: symmetric ``(..., n, n)`` tensor (only the lower triangle is read).

    Returns:
        ``(lam, q)``: eigenvalues ``(..., n)`` in ascending order and the eigenvectors as the
        columns of ``q`` ``(..., n, n)``.

    Example:
        >>> lam, q = eigh(torch.tensor([[2.0, 0.0], [0.0, 1.0]]))
        >>> lam.tolist(), q.abs().tolist()
        ([1.0, 2.0], [[0.0, 1.0], [1.0, 0.0]])
    """
    lam, q = torch.linalg.eigh(g)
    return lam, q


#: From this size on, :func:`eigh_coordinates` on a CPU float64 matrix skips the
#: eigenvectors' back-transformation (below it ``torch.linalg.eigh`` is as fast).
COORDINATES_TRIDIAGONAL_MIN_N = 256


def eigh_coordinates(g: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    r"""Eigenvalues of symmetric ``g`` and the coordinates :math:`Q^\top B` of ``b`` in its eigenbasis.

    When only :math:`Z = Q^\top B` is needed for a few columns (LogME's class targets),
    forming :math:`Q` is wasted work. With the tridiagonal reduction
    :math:`G = H T H^\top` (LAPACK ``dsytrd``) and :math:`T = W \Lambda W^\top`
    (``dstemr``, :math:`O(n^2)`), :math:`Q = H W` and

    .. math::

        Z = W^\top (H^\top B),

    where :math:`H^\top B` applies the ``n - 1`` Householder reflectors to ``B`` directly
    (``dormqr``) instead of accumulating them into an ``n x n`` matrix. These are the building
    blocks of LAPACK's ``dsyevr``, so the accuracy is ``eigh``'s. CPU float64 matrices from
    :data:`COORDINATES_TRIDIAGONAL_MIN_N` rows take this route; others use
    ``torch.linalg.eigh`` and :math:`Q^\top B`.

    Args:
        g: symmetric ``(n, n)`` tensor (only the lower triangle is read).
        b: ``(n, c)`` tensor.

    Returns:
        ``(lam, z)``: eigenvalues ``(n,)`` ascending and ``z = Q^T b`` ``(n, c)``, each row's
        sign as arbitrary as the eigenvector's.

    Example:
        >>> lam, z = eigh_coordinates(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.eye(2))
        >>> lam.tolist(), z.abs().tolist()
        ([1.0, 2.0], [[0.0, 1.0], [1.0, 0.0]])
    """
    n = g.shape[-1]
    if g.ndim != 2 or b.ndim != 2 or b.shape[0] != n:
        raise ValueError(
            f"expected a square (n, n) matrix and an (n, c) right-hand side, "
            f"found shapes {tuple(g.shape)} and {tuple(b.shape)}"
        )
    host = (
        g.device.type == "cpu"
        and g.dtype == torch.float64
        and n >= COORDINATES_TRIDIAGONAL_MIN_N
        and _lapack is not None
        and not (torch.is_grad_enabled() and (g.requires_grad or b.requires_grad))
    )
    if not host:
        lam, q = torch.linalg.eigh(g)
        return lam, q.mT @ b.to(q.dtype)
    from scipy.linalg import eigh_tridiagonal

    a = g.detach().numpy()
    rhs = np.array(b.detach().to(torch.float64).numpy(), order="F")
    lwork = int(_lapack.dsytrd_lwork(n=n, lower=1)[0])
    refl, diag, off, tau, info = _lapack.dsytrd(a, lower=1, lwork=max(lwork, 1))
    if info != 0:  # pragma: no cover - LAPACK reports only illegal arguments here
        raise RuntimeError(f"LAPACK dsytrd failed with info={info}")
    if n > 1 and rhs.shape[1]:
        below = np.asfortranarray(refl[1:, :-1])
        query = _lapack.dormqr("L", "T", below, tau, rhs[1:], -1)
        qwork = max(int(query[1][0]), rhs.shape[1], 1)
        applied, _, info = _lapack.dormqr("L", "T", below, tau, rhs[1:], qwork)
        if info != 0:  # pragma: no cover
            raise RuntimeError(f"LAPACK dormqr failed with info={info}")
        rhs[1:] = applied
    lam, w = eigh_tridiagonal(diag, off, lapack_driver="stemr", check_finite=False)
    return torch.from_numpy(lam), torch.from_numpy(w.T @ rhs)


def eigvalsh(g: Tensor, *, descending: bool = False, clip: bool = False) -> Tensor:
    r"""Eigenvalues of symmetric ``g`` (batched), one LAPACK thread on CPU.

    Many small Grams stacked into one ``(n_batches, n, n)`` tensor are solved in one call (on
    CUDA that keeps a stream of forward passes free of per-batch synchronisation).

    Args:
        g: symmetric ``(..., n, n)`` tensor (only the lower triangle is read).
        descending: largest first (default ascending, as LAPACK returns them).
        clip: clip at 0: a Gram matrix is positive semi-definite, so negative values are
            rounding noise of size about :math:`\epsilon \lambda_{\max}`.

    Returns:
        ``(..., n)`` eigenvalues on ``g``'s device, in ``g``'s dtype.

    Example:
        >>> g = torch.tensor([[[4.0, 0.0], [0.0, 9.0]], [[1.0, 0.0], [0.0, -1e-9]]])
        >>> eigvalsh(g, descending=True, clip=True).tolist()
        [[9.0, 4.0], [1.0, 0.0]]
    """
    with one_lapack_thread(g.device):
        lam = torch.linalg.eigvalsh(g)
    if descending:
        lam = lam.flip(-1)
    return lam.clamp_min(0) if clip else lam


def _dsyevr(a: npt.NDArray[np.float64], k: int) -> tuple[float, npt.NDArray[np.float64]] | None:
    """``(sum of the k smallest eigenvalues clipped at 0, their eigenvectors)`` by LAPACK.

    ``dsyevr`` computes only the first ``k`` eigenpairs: for 48 x 48 about 2x faster than
    ``torch.linalg.eigh``, which computes every eigenvector.
    """
    if _lapack is None:  # pragma: no cover - scipy is a dependency
        return None
    w, v, m, _, info = _lapack.dsyevr(a, compute_v=1, range="I", il=1, iu=k)
    if info != 0 or m != k:
        return None
    return float(np.maximum(w[:k], 0.0).sum()), v[:, :k]


def solved_on_host(f: Tensor) -> bool:
    """Whether the small eigenproblem of ``f``'s Gram is solved by LAPACK on the CPU.

    CPU tensors, and CUDA ones whose Gram is at most :data:`CUDA_EIGH_ON_CPU_MAX_N` square.

    Example:
        >>> solved_on_host(torch.zeros(4, 8))
        True
    """
    if _lapack is None:  # pragma: no cover - scipy is a dependency
        return False
    if f.device.type == "cpu":
        return f.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    return f.device.type == "cuda" and min(f.shape) <= CUDA_EIGH_ON_CPU_MAX_N


def _host_gram(x: Tensor, left: bool) -> npt.NDArray[Any]:
    return (torch.mm(x, x.t()) if left else torch.mm(x.t(), x)).cpu().numpy()


def smallest_eigenpairs_host(
    f: Tensor, k: int, precision: str
) -> tuple[float, npt.NDArray[np.float64], bool] | None:
    r"""The k smallest eigenpairs of the smaller Gram of ``f``, solved by LAPACK on the host.

    The Gram (:math:`F F^\top` when ``b <= d``, else :math:`F^\top F`) is formed on ``f``'s
    device (float32 for ``"float32"`` and, on CPU, for ``"auto"``; float64 otherwise), copied
    to the host and solved in float64. ``"auto"`` on CPU redoes it from a float64 Gram when
    the result is below :data:`AUTO_FALLBACK` times the trace.

    Args:
        f: ``(b, d)`` floating-point matrix on the CPU or (small) on CUDA.
        k: number of eigenpairs, ``1 <= k <= min(b, d)``.
        precision: one of :data:`PRECISIONS`.

    Returns:
        ``(total, vec, left)``: the sum of the k smallest eigenvalues (clipped at 0), their
        eigenvectors as a float64 array ``(n, k)``, and whether ``G = f f^T`` (else
        ``f^T f``); None if LAPACK failed.

    Example:
        >>> f = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
        >>> total, vec, left = smallest_eigenpairs_host(f, 1, "float64")
        >>> total, abs(vec).ravel().tolist(), left
        (4.0, [0.0, 1.0], True)
    """
    left = f.shape[0] <= f.shape[1]
    cpu = f.device.type == "cpu"
    if precision == "float32" or (precision == "auto" and cpu and f.dtype != torch.float64):
        a = _host_gram(f if f.dtype == torch.float32 else f.float(), left).astype(np.float64)
        out = _dsyevr(a, k)
        if out is None:
            return None
        if precision == "float32" or out[0] >= AUTO_FALLBACK * float(np.trace(a)):
            return out[0], out[1], left
    out = _dsyevr(_host_gram(f if f.dtype == torch.float64 else f.double(), left), k)
    return None if out is None else (out[0], out[1], left)


def smallest_eigenpairs_device(f: Tensor, k: int, precision: str) -> tuple[Tensor, Tensor, bool]:
    r"""The k smallest eigenpairs of the smaller Gram of ``f`` with ``torch.linalg.eigh``.

    On ``f``'s device, in float32 for ``"float32"`` and float64 otherwise.

    Args:
        f: ``(b, d)`` floating-point matrix.
        k: number of eigenpairs, ``1 <= k <= min(b, d)``.
        precision: one of :data:`PRECISIONS`.

    Returns:
        ``(total, vec, left)``: the sum of the k smallest eigenvalues (clipped at 0, a 0-d
        tensor), their eigenvectors ``(n, k)`` and whether ``G = f f^T``.

    Example:
        >>> f = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
        >>> total, vec, left = smallest_eigenpairs_device(f, 1, "float64")
        >>> total.item(), vec.abs().ravel().tolist(), left
        (4.0, [0.0, 1.0], True)
    """
    left = f.shape[0] <= f.shape[1]
    dtype = torch.float32 if precision == "float32" else torch.float64
    lam, vec = torch.linalg.eigh(gram(f if f.dtype == dtype else f.to(dtype), left=left))
    return lam[:k].clamp_min(0).sum(), vec[:, :k], left
