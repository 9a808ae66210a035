"""Small-Gram spectral helpers shared by BSS and TSVD.

The squared singular values of a ``b x d`` feature matrix ``F`` are the eigenvalues of the
Gram matrix ``F F^T`` (``b x b``) or ``F^T F`` (``d x d``), whichever is smaller. For a
fine-tuning batch (b = 48, d = 2048) that is a 48 x 48 symmetric eigenproblem after one
``b^2 d`` product, instead of an SVD of the whole ``2048 x 48`` matrix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["PRECISIONS", "as_matrix", "compute_dtype", "no_autocast", "gram", "eigh"]

#: Precisions of the Gram matrix: ``float64`` (default) or ``float32``.
PRECISIONS = ("float64", "float32")


def as_matrix(features: Tensor, what: str) -> Tensor:
    """``features`` as a ``(b, d)`` matrix (trailing dimensions flattened)."""
    if not isinstance(features, Tensor) or features.dim() < 2:
        shape = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise ConfigError(f"expected {what} features of shape (b, d), found {shape}")
    if not features.is_floating_point():
        raise ConfigError(f"expected floating-point {what} features, found {features.dtype}")
    return features if features.dim() == 2 else features.reshape(features.shape[0], -1)


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype of the Gram matrix for ``precision``."""
    return torch.float64 if precision == "float64" else torch.float32


@contextlib.contextmanager
def no_autocast(device: torch.device) -> Iterator[None]:
    """Disable autocast (AMP) around the spectral maths: half inputs are upcast instead."""
    if device.type in ("cuda", "cpu", "xpu", "mps"):
        with torch.autocast(device_type=device.type, enabled=False):
            yield
    else:  # pragma: no cover - other backends
        yield


def gram(x: Tensor, *, left: bool) -> Tensor:
    """``x x^T`` if ``left`` else ``x^T x``, symmetric by construction."""
    return x @ x.mT if left else x.mT @ x


def eigh(g: Tensor) -> tuple[Tensor, Tensor]:
    """Eigenvalues (ascending) and eigenvectors of the small symmetric matrix ``g``."""
    return torch.linalg.eigh(g)
