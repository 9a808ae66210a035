"""SFDA against a NumPy/SciPy transcription of the reference implementation."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures.scores import make_task
from scipy import linalg

from spectral_probe.transferability import sfda


# Transcribed from TencentARC/SFDA, metrics.py (_cov, softmax, _class_means, SFDA, SFDA_Score)
# and utils.py (iterative_A), commit eb1eee0a7e02883842d2e9fe387edb34345f202d; the generalised
# eigenproblem is kept (the package uses the equivalent closed form), printing removed.
def _cov(x: np.ndarray, shrinkage: float = -1) -> np.ndarray:
    emp_cov = np.cov(np.asarray(x).T, bias=1)
    if shrinkage < 0:
        return emp_cov
    n_features = emp_cov.shape[0]
    mu = np.trace(emp_cov) / n_features
    shrunk_cov = (1.0 - shrinkage) * emp_cov
    shrunk_cov.flat[:: n_features + 1] += shrinkage * mu
    return shrunk_cov


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - np.max(x, axis=1).reshape((-1, 1))
    x = np.exp(x)
    return x / np.sum(x, axis=1).reshape((-1, 1))


def _iterative_a(a: np.ndarray, max_iterations: int = 3) -> float:
    x = a.sum(axis=1)
    for _ in range(max_iterations):
        temp = np.dot(a, x)
        y = temp / np.linalg.norm(temp, 2)
        temp = np.dot(a, y)
        x = temp / np.linalg.norm(temp, 2)
    return float(np.dot(np.dot(x.T, a), y))


def _fit_predict(x: np.ndarray, y: np.ndarray, shrinkage: float | None) -> tuple[np.ndarray, float]:
    classes, y_t = np.unique(y, return_inverse=True)
    priors = np.bincount(y_t) / float(len(y))
    cnt = np.bincount(y_t)
    means = np.zeros(shape=(len(classes), x.shape[1]))
    np.add.at(means, y_t, x)
    means /= cnt[:, None]
    cov = np.zeros(shape=(x.shape[1], x.shape[1]))
    for idx, group in enumerate(classes):
        cov += priors[idx] * np.atleast_2d(_cov(x[y == group, :]))
    sw = cov
    if shrinkage is None:
        shrinkage = max(np.exp(-5 * _iterative_a(sw, max_iterations=3)), 1e-10)
    st = _cov(x, shrinkage=shrinkage)
    n_features = sw.shape[0]
    mu = np.trace(sw) / n_features
    shrunk_sw = (1.0 - shrinkage) * sw
    shrunk_sw.flat[:: n_features + 1] += shrinkage * mu
    sb = st - shrunk_sw
    evals, evecs = linalg.eigh(sb, shrunk_sw)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = np.dot(means, evecs).dot(evecs.T)
    intercept = -0.5 * np.diag(np.dot(means, coef.T)) + np.log(priors)
    return _softmax(np.dot(x, coef.T) + intercept), shrinkage


def _reference_sfda(x: np.ndarray, y: np.ndarray) -> float:
    x = x.copy()
    n = len(y)
    num_classes = len(np.unique(y))
    prob, shrinkage = _fit_predict(x, y, None)
    prob = np.exp(prob) / np.exp(prob).sum(axis=1, keepdims=True)
    classes, y_inv = np.unique(y, return_inverse=True)
    cnt = np.bincount(y_inv)
    means = np.zeros(shape=(len(classes), x.shape[1]))
    np.add.at(means, y_inv, x)
    means /= cnt[:, None]
    means_ = np.zeros(shape=(len(classes), x.shape[1]))
    for i in range(len(classes)):
        means_[i] = (np.sum(means, axis=0) - means[i]) / (len(classes) - 1)
    for y_ in range(num_classes):
        indices = np.where(y == y_)[0]
        y_prob = np.take(prob, indices, axis=0)[:, y_]
        x[indices] = (
            y_prob.reshape(len(y_prob), 1) * x[indices]
            + (1 - y_prob.reshape(len(y_prob), 1)) * means_[y_]
        )
    prob, _ = _fit_predict(x, y, shrinkage)
    return float(np.sum(prob[np.arange(n), y]) / n)


@pytest.mark.parametrize(
    ("n", "d", "c", "scale", "seed"),
    [(300, 16, 4, 1.0, 0), (600, 32, 10, 1.0, 1), (200, 8, 3, 0.05, 2), (120, 12, 5, 0.2, 3)],
)
def test_matches_reference(n: int, d: int, c: int, scale: float, seed: int) -> None:
    """``scale`` shrinks the features so that the adaptive shrinkage is not at its 1e-10 floor."""
    f, y = make_task(n, d, c, seed)
    f = f * scale
    assert sfda(f, y) == pytest.approx(_reference_sfda(f, y), rel=1e-6)


def test_separable_classes_score_higher() -> None:
    f, y = make_task(300, 8, 3, 4, separation=4.0)
    noise = np.random.default_rng(4).standard_normal(f.shape)
    assert sfda(f, y) > sfda(noise, y)
