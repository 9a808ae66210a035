"""Small-Gram spectral helpers shared by BSS and TSVD.

The squared singular values of a ``b x d`` feature matrix ``F`` are the eigenvalues of the
Gram matrix ``F F^T`` (``b x b``) or ``F^T F`` (``d x d``), whichever is smaller. For a
fine-tuning batch (b = 48, d = 2048) that is a 48 x 48 symmetric eigenproblem after one
``b^2 d`` product, instead of an SVD of the whole ``2048 x 48`` matrix.

Precision (measured by ``bench/bench_bss.py`` against NumPy's float64 SVD): a float64 Gram
gives the small eigenvalues to ~1e-15 of ``sigma_max^2``; a float32 Gram to ~2e-7 of
``sigma_max^2`` (relative error ~1e-7 on ordinary feature batches, but no relative accuracy
left once ``sigma_min^2 < ~1e-6 sigma_max^2``). ``"auto"`` takes the float32 Gram on CPU,
where the float64 product costs ~1.5x, and redoes it in float64 when the k smallest
eigenvalues fall below ``1e-3 trace(G)`` (worst relative error then ~2e-4); on other devices
it always uses float64 (cheap there, and immune to TF32 matmul settings), as it does for
float64 features.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError

try:
    from scipy.linalg import lapack as _lapack
except ImportError:  # pragma: no cover - scipy is a dependency
    _lapack = None

__all__ = [
    "PRECISIONS",
    "AUTO_FALLBACK",
    "as_matrix",
    "no_autocast",
    "gram",
    "smallest_eigenpairs",
]

#: Precisions of the Gram matrix.
PRECISIONS = ("auto", "float64", "float32")
#: ``"auto"`` redoes a float32 Gram in float64 when sum(k smallest) < this * trace(G).
AUTO_FALLBACK = 1e-3
#: On CUDA, solve the small eigenproblem on the CPU (LAPACK) instead of the GPU solver.
CUDA_EIGH_ON_CPU = False


def as_matrix(features: Tensor, what: str) -> Tensor:
    """``features`` as a ``(b, d)`` matrix (trailing dimensions flattened)."""
    if not isinstance(features, Tensor) or features.dim() < 2:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ConfigError(f"expected {what} features of shape (b, d), found {shape}")
    if not features.is_floating_point():
        raise ConfigError(f"expected floating-point {what} features, found {features.dtype}")
    return features if features.dim() == 2 else features.reshape(features.shape[0], -1)


def no_autocast(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """Disable autocast (AMP) around the spectral maths: half inputs are upcast instead."""
    if device.type in ("cuda", "cpu", "xpu", "mps") and torch.is_autocast_enabled(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def gram(x: Tensor, *, left: bool) -> Tensor:
    """``x x^T`` if ``left`` else ``x^T x``."""
    return x @ x.mT if left else x.mT @ x


def _lapack_smallest(g: Tensor, k: int) -> tuple[np.ndarray, Tensor] | None:
    """LAPACK ``dsyevr`` for the k smallest eigenpairs of a CPU matrix (in float64), or None.

    Only the first ``k`` eigenpairs are computed: for 48 x 48 about 2x faster than
    ``torch.linalg.eigh``, which computes every eigenvector. A float32 Gram is solved in
    float64 (its small eigenvalues are then limited by the Gram, not by the solver).
    Returns the eigenvalues as a NumPy array and the eigenvectors as a float64 tensor.
    """
    if _lapack is None:  # pragma: no cover - scipy is a dependency
        return None
    a = g.numpy() if g.dtype == torch.float64 else g.double().numpy()
    w, v, m, _, info = _lapack.dsyevr(a, compute_v=1, range="I", il=1, iu=k)
    if info != 0 or m != k:
        return None
    return w[:k], torch.from_numpy(v[:, :k])


def _eigh_k(g: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` smallest eigenvalues (ascending) of symmetric ``g`` and their eigenvectors.

    On CPU: LAPACK (:func:`_lapack_smallest`). On CUDA: ``torch.linalg.eigh`` (or LAPACK on
    a CPU copy if :data:`CUDA_EIGH_ON_CPU`).
    """
    if g.device.type == "cpu" and g.dtype in (torch.float32, torch.float64):
        out = _lapack_smallest(g.contiguous(), k)
        if out is not None:
            return torch.from_numpy(out[0]), out[1]
    elif g.device.type == "cuda" and CUDA_EIGH_ON_CPU:
        lam, vec = _eigh_k(g.cpu(), k)
        return lam.to(g.device, non_blocking=True), vec.to(g.device, non_blocking=True)
    lam, vec = torch.linalg.eigh(g)
    return lam[:k], vec[:, :k]


def smallest_eigenpairs(f: Tensor, k: int, precision: str) -> tuple[Tensor | float, Tensor, bool]:
    """Sum of the k smallest eigenvalues of the smaller Gram of ``f`` and their eigenvectors.

    No autograd. Eigenvalues below zero (rounding) count as zero.

    Returns:
        ``(total, vec, left)``: the sum (a float on CPU, else a 0-d tensor), the eigenvectors
        (``(n, k)``) of ``G = f f^T`` if ``left`` else of ``f^T f``.
    """
    left = f.shape[0] <= f.shape[1]
    if f.device.type == "cpu" and _lapack is not None:
        single = precision == "float32" or (precision == "auto" and f.dtype != torch.float64)
        if single:
            g = gram(f if f.dtype == torch.float32 else f.float(), left=left)
            out = _lapack_smallest(g, k)
            if out is not None:
                total = float(np.clip(out[0], 0, None).sum())
                if precision == "float32" or total >= AUTO_FALLBACK * float(np.trace(g.numpy())):
                    return total, out[1], left
        out = _lapack_smallest(gram(f if f.dtype == torch.float64 else f.double(), left=left), k)
        if out is not None:
            return float(np.clip(out[0], 0, None).sum()), out[1], left
    dtype = torch.float32 if precision == "float32" else torch.float64
    lam, vec = _eigh_k(gram(f if f.dtype == dtype else f.to(dtype), left=left), k)
    return lam.clamp_min(0).sum(), vec, left
