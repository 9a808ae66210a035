"""TransRate against a NumPy transcription of the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures.scores import make_task

from spectral_probe.errors import ConfigError
from spectral_probe.transferability import transrate


# Transcribed from thuml/Transfer-Learning-Library, tllib/ranking/transrate.py (coding_rate,
# transrate), commit 4cc0d9150b6163e3ec1f42124c1e65b46f513475.
def _coding_rate(f: np.ndarray, eps: float) -> float:
    n, d = f.shape
    _, rate = np.linalg.slogdet(np.eye(d) + 1 / (n * eps) * f.T @ f)
    return 0.5 * rate


def _reference_transrate(f: np.ndarray, y: np.ndarray, eps: float = 1e-4) -> float:
    f = f - np.mean(f, axis=0, keepdims=True)
    rfy = 0.0
    c = int(y.max() + 1)
    for i in range(c):
        rfy += _coding_rate(f[(y == i).flatten()], eps)
    return float(_coding_rate(f, eps) - rfy / c)


@pytest.mark.parametrize(
    ("n", "d", "c", "eps", "seed"),
    [(300, 16, 4, 1e-4, 0), (1000, 64, 10, 1e-4, 1), (60, 90, 3, 1e-2, 2), (200, 8, 5, 1.0, 3)],
)
def test_matches_reference(n: int, d: int, c: int, eps: float, seed: int) -> None:
    f, y = make_task(n, d, c, seed)
    assert transrate(f, y, eps) == pytest.approx(_reference_transrate(f, y, eps), rel=1e-6)


def test_rejects_non_positive_eps() -> None:
    f, y = make_task(20, 3, 2)
    with pytest.raises(ConfigError, match="eps > 0"):
        transrate(f, y, 0.0)
