"""Feature-matrix helpers shared by BSS and TSVD, whose maths run on the small Gram matrix.

The eigensolvers themselves (the Gram, its smallest eigenpairs on the host or the device,
their precision and threads) live in :mod:`spectral_probe.spectral.eigen`.
"""

from __future__ import annotations

import contextlib

import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = ["as_matrix", "no_autocast"]


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
