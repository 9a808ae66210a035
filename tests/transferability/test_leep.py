"""LEEP against a NumPy transcription of the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.errors import DataError
from spectral_probe.transferability import leep


# Transcribed from thuml/Transfer-Learning-Library, tllib/ranking/leep.py
# (log_expected_empirical_prediction), commit 83d900556472e70aaad06211b635a7693c26353b.
def _reference_leep(source_pred: np.ndarray, target_label: np.ndarray) -> float:
    n, c_s = source_pred.shape
    c_t = int(np.max(target_label) + 1)
    normalized_prob = source_pred / float(n)
    joint = np.zeros((c_t, c_s), dtype=float)
    for i in range(c_t):
        joint[i] = np.sum(normalized_prob[target_label == i], axis=0)
    p_target_given_source = (joint / joint.sum(axis=0, keepdims=True)).T
    empirical_prediction = source_pred @ p_target_given_source
    empirical_prob = np.array([p[label] for p, label in zip(empirical_prediction, target_label)])
    return float(np.mean(np.log(empirical_prob)))


def _probs(n: int, c_s: int, seed: int) -> np.ndarray:
    logits = 2.0 * np.random.default_rng(seed).standard_normal((n, c_s))
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.parametrize(
    ("n", "c_s", "c_t", "seed"), [(200, 10, 3, 0), (500, 1000, 20, 1), (50, 5, 7, 2)]
)
def test_matches_reference(n: int, c_s: int, c_t: int, seed: int) -> None:
    probs = _probs(n, c_s, seed)
    y = np.arange(n) % c_t
    assert leep(probs, y) == pytest.approx(_reference_leep(probs, y), rel=1e-6)
    assert leep(torch.as_tensor(probs), torch.as_tensor(y)) == pytest.approx(
        _reference_leep(probs, y), rel=1e-6
    )


def test_is_invariant_to_permuting_source_classes() -> None:
    probs = _probs(100, 8, 3)
    y = np.arange(100) % 4
    assert leep(probs[:, ::-1], y) == pytest.approx(leep(probs, y), rel=1e-12)


def test_rejects_logits() -> None:
    with pytest.raises(DataError, match="summing to 1"):
        leep(np.random.default_rng(0).standard_normal((10, 4)), np.arange(10) % 2)


def test_zero_probability_source_class_is_ignored() -> None:
    probs = np.concatenate([_probs(40, 4, 4), np.zeros((40, 1))], axis=1)
    y = np.arange(40) % 2
    assert leep(probs, y) == pytest.approx(leep(probs[:, :4], y), rel=1e-12)
