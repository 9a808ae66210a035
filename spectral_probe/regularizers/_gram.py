"""The AMP switch shared by BSS and TSVD, whose maths run on the small Gram matrix.

The eigensolvers themselves (the Gram, its smallest eigenpairs on the host or the device,
their precision and threads) live in :mod:`spectral_probe.spectral.eigen`.
"""

from __future__ import annotations

import contextlib

import torch

__all__ = ["no_autocast"]


def no_autocast(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """Disable autocast (AMP) around the spectral maths: half inputs are upcast instead."""
    if device.type in ("cuda", "cpu", "xpu", "mps") and torch.is_autocast_enabled(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()
