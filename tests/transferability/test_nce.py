"""NCE against a NumPy transcription of the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest

from spectral_probe.transferability import nce


# Transcribed from thuml/Transfer-Learning-Library, tllib/ranking/nce.py
# (negative_conditional_entropy), commit 56ccfd7416b21b95351dffacc2aab1fe30f68561.
def _reference_nce(source_labels: np.ndarray, target_labels: np.ndarray) -> float:
    c_t = int(np.max(target_labels) + 1)
    c_s = int(np.max(source_labels) + 1)
    n = len(source_labels)
    joint = np.zeros((c_t, c_s), dtype=float)
    for s, t in zip(source_labels, target_labels):
        joint[int(t), int(s)] += 1.0 / n
    p_z = joint.sum(axis=0, keepdims=True)
    p_target_given_source = (joint / np.where(p_z == 0, 1, p_z)).T
    mask = p_z.reshape(-1) != 0
    p_target_given_source = p_target_given_source[mask] + 1e-20
    entropy_y_given_z = np.sum(
        -p_target_given_source * np.log(p_target_given_source), axis=1, keepdims=True
    )
    return float(-np.sum(entropy_y_given_z * p_z.reshape((-1, 1))[mask]))


@pytest.mark.parametrize(
    ("n", "c_s", "c_t", "seed"), [(300, 10, 3, 0), (1000, 1000, 20, 1), (60, 4, 6, 2)]
)
def test_matches_reference(n: int, c_s: int, c_t: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % c_t
    z = np.where(rng.random(n) < 0.5, y % c_s, rng.integers(0, c_s, n))  # partly predictive
    assert nce(z, y) == pytest.approx(_reference_nce(z, y), rel=1e-6)


def test_is_invariant_to_relabelling_source_classes() -> None:
    rng = np.random.default_rng(3)
    y = np.arange(200) % 5
    z = rng.integers(0, 7, 200)
    assert nce((z * 3 + 11) % 7 + 100, y) == pytest.approx(nce(z, y), rel=1e-12)


def test_a_determining_source_label_scores_zero_and_an_independent_one_minus_entropy() -> None:
    y = np.arange(400) % 4
    assert nce(y + 10, y) == 0.0
    z = np.repeat([0, 1], 200)  # independent of y: -H(Y) = -log 4
    assert nce(z, y) == pytest.approx(-np.log(4), rel=1e-12)
