"""Seeded synthetic features with class structure (transferability tests and bench)."""

from __future__ import annotations

import numpy as np


def make_task(
    n: int, d: int, c: int, seed: int = 0, separation: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """``(features (n, d), labels (n,))``: Gaussian classes with shifted means, every class present."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c
    rng.shuffle(y)
    centres = separation * rng.standard_normal((c, d))
    scales = rng.uniform(0.5, 2.0, size=d)
    f = centres[y] + rng.standard_normal((n, d)) * scales
    return f, y
