"""Regularized H-score against a transcription of the reference (which uses scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures.scores import make_task
from sklearn.covariance import LedoitWolf

from spectral_probe.transferability import regularized_h_score


# Transcribed from thuml/Transfer-Learning-Library, tllib/ranking/hscore.py
# (regularized_h_score, Ibrahim et al.'s contribution), as it reads in the library's main branch.
def _reference_regularized_h_score(features: np.ndarray, y: np.ndarray) -> float:
    f = features.astype("float64")
    f = f - np.mean(f, axis=0, keepdims=True)
    g = np.zeros_like(f)
    cov = LedoitWolf(assume_centered=False).fit(f)
    alpha = cov.shrinkage_
    covf_alpha = cov.covariance_
    for i in range(int(y.max() + 1)):
        g[y == i] = np.mean(f[y == i, :], axis=0)
    covg = np.cov(g, rowvar=False)
    return float(np.trace(np.dot(np.linalg.pinv(covf_alpha, rcond=1e-15), (1 - alpha) * covg)))


@pytest.mark.parametrize(
    ("n", "d", "c", "seed"),
    [(300, 16, 4, 0), (1000, 64, 10, 1), (40, 80, 3, 2), (100, 1, 3, 3), (2500, 40, 5, 4)],
)
def test_matches_reference(n: int, d: int, c: int, seed: int) -> None:
    f, y = make_task(n, d, c, seed)
    assert regularized_h_score(f, y) == pytest.approx(
        _reference_regularized_h_score(f, y), rel=1e-6
    )


def test_shrinkage_matches_scikit_learn_when_dimensions_approach_samples() -> None:
    import torch

    from spectral_probe.transferability._centred import centred_spectrum
    from spectral_probe.transferability.regularized_h_score import ledoit_wolf_shrinkage

    f, y = make_task(40, 80, 3, 5)
    spec = centred_spectrum(torch.as_tensor(f), torch.as_tensor(y), 3)
    shrinkage, _ = ledoit_wolf_shrinkage(spec, 40, 80)
    assert 0 < shrinkage <= 1
    assert shrinkage == pytest.approx(LedoitWolf().fit(f).shrinkage_, rel=1e-9)
