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
from collections.abc import Iterator

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
    "CUDA_EIGH_ON_CPU_MAX_N",
    "as_matrix",
    "no_autocast",
    "one_thread",
    "gram",
    "solved_on_host",
    "host_smallest",
    "device_smallest",
]

#: Precisions of the Gram matrix.
PRECISIONS = ("auto", "float64", "float32")
#: ``"auto"`` redoes a float32 Gram in float64 when sum(k smallest) < this * trace(G).
AUTO_FALLBACK = 1e-3
#: On CUDA, Grams up to this size are solved by LAPACK on the CPU: copying 48 x 48 values
#: there and back plus ``dsyevr`` takes ~0.15 ms on an H200 host, the GPU solver ~0.65 ms.
#: Set to 0 to always use ``torch.linalg.eigh`` on the GPU.
CUDA_EIGH_ON_CPU_MAX_N = 256


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


@contextlib.contextmanager
def one_thread(device: torch.device) -> Iterator[None]:
    """Run CPU work on one intra-op thread, then restore the previous setting.

    The spectral terms work on ``b x d`` matrices with ``b`` around 48: far too small to gain
    from threads, and on a busy machine each parallel region of such a small op waits for a
    descheduled worker thread (measured on 2 shared cores: 60 ms per BSS step with 2 threads,
    0.6 ms with one).
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
    """``x x^T`` if ``left`` else ``x^T x``."""
    return x @ x.mT if left else x.mT @ x


def _dsyevr(a: np.ndarray, k: int) -> tuple[float, np.ndarray] | None:
    """``(sum of the k smallest eigenvalues clipped at 0, their eigenvectors)`` by LAPACK.

    ``dsyevr`` computes only the first ``k`` eigenpairs: for 48 x 48 about 2x faster than
    ``torch.linalg.eigh``, which computes every eigenvector.
    """
    w, v, m, _, info = _lapack.dsyevr(a, compute_v=1, range="I", il=1, iu=k)
    if info != 0 or m != k:
        return None
    return float(np.maximum(w[:k], 0.0).sum()), v[:, :k]


def solved_on_host(f: Tensor) -> bool:
    """Whether the small eigenproblem of ``f``'s Gram is solved by LAPACK on the CPU.

    CPU tensors, and CUDA ones whose Gram is at most :data:`CUDA_EIGH_ON_CPU_MAX_N` square.
    """
    if _lapack is None:  # pragma: no cover - scipy is a dependency
        return False
    if f.device.type == "cpu":
        return f.dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)
    return f.device.type == "cuda" and min(f.shape) <= CUDA_EIGH_ON_CPU_MAX_N


def host_smallest(f: Tensor, k: int, precision: str) -> tuple[float, np.ndarray, bool] | None:
    """The k smallest eigenpairs of the smaller Gram of ``f``, solved by LAPACK on the host.

    The Gram is formed on ``f``'s device (float32 for ``"float32"`` and, on CPU, for
    ``"auto"``; float64 otherwise), copied to the host and solved in float64. ``"auto"`` on
    CPU redoes it from a float64 Gram when the result is below ``AUTO_FALLBACK * trace``.

    Returns:
        ``(total, vec, left)``: the sum of the k smallest eigenvalues (clipped at 0), their
        eigenvectors as a float64 array ``(n, k)``, and whether ``G = f f^T`` (else
        ``f^T f``); None if LAPACK failed.
    """
    left = f.shape[0] <= f.shape[1]
    cpu = f.device.type == "cpu"
    if precision == "float32" or (precision == "auto" and cpu and f.dtype != torch.float64):
        x = f if f.dtype == torch.float32 else f.float()
        a = (torch.mm(x, x.t()) if left else torch.mm(x.t(), x)).cpu().numpy().astype(np.float64)
        out = _dsyevr(a, k)
        if out is None:
            return None
        if precision == "float32" or out[0] >= AUTO_FALLBACK * float(np.trace(a)):
            return out[0], out[1], left
    x = f if f.dtype == torch.float64 else f.double()
    a = (torch.mm(x, x.t()) if left else torch.mm(x.t(), x)).cpu().numpy()
    out = _dsyevr(a, k)
    return None if out is None else (out[0], out[1], left)


def device_smallest(f: Tensor, k: int, precision: str) -> tuple[Tensor, Tensor, bool]:
    """The k smallest eigenpairs of the smaller Gram of ``f`` with ``torch.linalg.eigh``.

    Returns:
        ``(total, vec, left)``: the sum of the k smallest eigenvalues (clipped at 0, a 0-d
        tensor), their eigenvectors ``(n, k)`` and whether ``G = f f^T``.
    """
    left = f.shape[0] <= f.shape[1]
    dtype = torch.float32 if precision == "float32" else torch.float64
    lam, vec = torch.linalg.eigh(gram(f if f.dtype == dtype else f.to(dtype), left=left))
    return lam[:k].clamp_min(0).sum(), vec[:, :k], left
