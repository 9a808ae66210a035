"""Every registered score through one table of cases: invariances, degenerate inputs, bad input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from _fixtures.scores import make_task

from spectral_probe.errors import ConfigError, DataError, SpectralProbeError
from spectral_probe.transferability import SCORES, Score, check_scores, get_score, list_scores

NAMES = list(SCORES)


def _source_probs(y: np.ndarray, c_s: int = 12, seed: int = 0) -> np.ndarray:
    """Softmax outputs of a made-up source classifier, partly predictive of ``y``."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((len(y), c_s))
    logits[np.arange(len(y)), y % c_s] += 2.0
    e = np.exp(logits - logits.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def _inputs(score: Score, f: np.ndarray, y: np.ndarray) -> Any:
    if score.needs == "features":
        return f
    probs = _source_probs(y)
    return probs if score.needs == "source_probs" else probs.argmax(1)


def _run(name: str, f: np.ndarray, y: np.ndarray) -> float:
    score = SCORES[name]
    return score.fn(_inputs(score, f, y), y)


def test_registry_lists_every_score_with_its_needs() -> None:
    assert NAMES == ["logme", "leep", "nce", "h_score", "regularized_h_score", "transrate", "sfda"]
    assert [s.name for s in list_scores()] == NAMES
    assert {s.needs for s in list_scores()} == {"features", "source_probs", "source_labels"}
    assert check_scores(None) == NAMES
    assert check_scores(["SFDA", "h-score", "sfda"]) == ["sfda", "h_score"]


def test_unknown_score_is_one_line_with_close_matches() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown transferability score 'logmee' \(close: logme"
    ) as info:
        get_score("logmee")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_sample_permutation_changes_nothing(name: str) -> None:
    f, y = make_task(240, 12, 4, 1)
    perm = np.random.default_rng(1).permutation(len(y))
    score = SCORES[name]
    inputs = _inputs(score, f, y)
    assert score.fn(inputs[perm], y[perm]) == pytest.approx(
        score.fn(inputs, y), rel=1e-9, abs=1e-12
    )


@pytest.mark.parametrize("name", NAMES)
def test_target_class_relabelling_changes_nothing(name: str) -> None:
    """Any bijection of the target labels, to other integers or to strings (the source side stays)."""
    f, y = make_task(240, 12, 4, 2)
    score = SCORES[name]
    inputs = _inputs(score, f, y)
    base = score.fn(inputs, y)
    mapping = np.array([7, 2, 30, 5])
    assert score.fn(inputs, mapping[y]) == pytest.approx(base, rel=1e-9, abs=1e-12)
    assert score.fn(inputs, np.array(["d", "b", "a", "c"])[y]) == pytest.approx(
        base, rel=1e-9, abs=1e-12
    )


@pytest.mark.parametrize("name", NAMES)
def test_torch_and_numpy_inputs_agree(name: str) -> None:
    f, y = make_task(120, 6, 3, 3)
    score = SCORES[name]
    inputs = _inputs(score, f, y)
    assert score.fn(torch.as_tensor(inputs), torch.as_tensor(y)) == pytest.approx(
        score.fn(inputs, y), rel=1e-12
    )


@pytest.mark.parametrize("name", NAMES)
def test_one_class_is_a_clear_error(name: str) -> None:
    f, _ = make_task(50, 5, 2, 4)
    with pytest.raises(DataError, match="at least 2 classes, found 1"):
        _run(name, f, np.zeros(50, dtype=int))


@pytest.mark.parametrize("name", NAMES)
def test_a_class_with_one_sample_gives_a_finite_value(name: str) -> None:
    f, y = make_task(61, 6, 3, 5)
    y = y.copy()
    y[y == 2] = 1
    y[0] = 2  # class 2 has exactly one sample
    assert math.isfinite(_run(name, f, y))


@pytest.mark.parametrize("name", NAMES)
def test_more_dimensions_than_samples_gives_a_finite_value(name: str) -> None:
    f, y = make_task(30, 120, 3, 6)
    assert math.isfinite(_run(name, f, y))


@pytest.mark.parametrize("name", [n for n in NAMES if SCORES[n].needs == "features"])
def test_constant_features_are_a_clear_error(name: str) -> None:
    y = np.arange(40) % 4
    with pytest.raises(DataError, match="features that vary across samples"):
        _run(name, np.full((40, 8), 3.0), y)


@pytest.mark.parametrize("name", [n for n in NAMES if SCORES[n].needs == "features"])
def test_a_constant_feature_column_gives_a_finite_value(name: str) -> None:
    f, y = make_task(80, 6, 4, 7)
    f = np.concatenate([f, np.ones((80, 2))], axis=1)
    assert math.isfinite(_run(name, f, y))


@pytest.mark.parametrize("name", NAMES)
def test_labels_and_inputs_of_different_lengths_are_one_line(name: str) -> None:
    f, y = make_task(50, 5, 2, 8)
    score = SCORES[name]
    with pytest.raises(
        SpectralProbeError, match=r"one of the labels per sample \(50\), found 49"
    ) as info:
        score.fn(_inputs(score, f, y), y[:49])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", [n for n in NAMES if SCORES[n].needs == "features"])
def test_non_finite_features_are_an_error(name: str) -> None:
    f, y = make_task(50, 5, 2, 9)
    f[3, 1] = np.nan
    with pytest.raises(DataError, match="finite"):
        _run(name, f, y)
