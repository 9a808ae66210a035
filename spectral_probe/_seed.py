"""One place to seed every random number generator the toolkit touches."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "torch_generator"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every CUDA device) with ``seed``."""
    if not isinstance(seed, int) or seed < 0:
        from .errors import ConfigError

        raise ConfigError(f"expected a non-negative integer seed, found {seed!r}")
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed`` (for samplers and loaders)."""
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
