"""H-score against a NumPy transcription of the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures.scores import make_task

from spectral_probe.transferability import h_score


# Transcribed from thuml/Transfer-Learning-Library, tllib/ranking/hscore.py (h_score),
# commit 29a228d16a5e4dec5676f138e258eddb9442de3c.
def _reference_h_score(f: np.ndarray, y: np.ndarray) -> float:
    covf = np.cov(f, rowvar=False)
    g = np.zeros_like(f)
    for i in range(int(y.max() + 1)):
        g[y == i] = np.mean(f[y == i, :], axis=0)
    covg = np.cov(g, rowvar=False)
    return float(np.trace(np.dot(np.linalg.pinv(covf, rcond=1e-15), covg)))


@pytest.mark.parametrize(
    ("n", "d", "c", "seed"), [(300, 16, 4, 0), (1000, 64, 10, 1), (100, 2, 3, 2)]
)  # the reference fails on D = 1 (np.cov is 0-d)
def test_matches_reference(n: int, d: int, c: int, seed: int) -> None:
    f, y = make_task(n, d, c, seed)
    assert h_score(f, y) == pytest.approx(_reference_h_score(f, y), rel=1e-6)


def test_more_dimensions_than_samples_stays_finite_and_bounded() -> None:
    """Rank N-1 < D: the score is at most C-1 (the trace of a projection's share), never noise."""
    f, y = make_task(30, 100, 3, 3)
    value = h_score(f, y)
    assert np.isfinite(value) and 0 < value <= 2 + 1e-9
