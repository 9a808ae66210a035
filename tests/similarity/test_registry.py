"""Every registered metric: its function, its pairwise form, and the common properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.errors import ConfigError
from spectral_probe.similarity import METRICS, DegenerateFeaturesError, get_metric, pairwise

RNG = np.random.default_rng(0)
X = RNG.normal(size=(80, 6)) + 2.0
Y = np.tanh(X[:, :4]) @ RNG.normal(size=(4, 5)) + 0.5 * RNG.normal(size=(80, 5))


def test_registry_names_and_kinds():
    assert list(METRICS) == ["cka", "debiased-cka", "rbf-cka", "svcca", "pwcca", "procrustes"]
    assert {m.name for m in METRICS.values() if m.streaming} == {"cka", "debiased-cka"}
    with pytest.raises(ConfigError, match=r"expected a metric in \[.*'cka'.*\], found 'nope'"):
        get_metric("nope")


@pytest.mark.parametrize("name", list(METRICS))
def test_pairwise_equals_the_function_on_each_pair(name):
    metric = get_metric(name)
    xs, ys = [X, X[:, :3]], [Y, X[:, ::-1] * 2, Y[:, :2]]
    got = pairwise(name, xs, ys)
    assert got.shape == (2, 3)
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            assert float(got[i, j]) == pytest.approx(metric.function(x, y), abs=1e-10)


@pytest.mark.parametrize("name", list(METRICS))
def test_identical_and_symmetric(name):
    metric = get_metric(name)
    same = metric.function(X, torch.from_numpy(X))
    assert same == pytest.approx(0.0 if metric.kind == "distance" else 1.0, abs=1e-9)
    if metric.symmetric:
        assert metric.function(X, Y) == pytest.approx(metric.function(Y, X), abs=1e-10)
    with pytest.raises(DegenerateFeaturesError, match="constant"):
        metric.function(X, np.ones_like(Y))


def test_pairwise_options_and_errors():
    loose = pairwise("rbf-cka", [X], [Y], sigma=5.0)
    assert float(loose[0, 0]) == pytest.approx(
        get_metric("rbf-cka").function(X, Y, sigma=5.0), abs=1e-12
    )
    assert float(pairwise("svcca", [X], [Y], keep=2)[0, 0]) == pytest.approx(
        get_metric("svcca").function(X, Y, keep=2), abs=1e-12
    )
    with pytest.raises(ConfigError, match="options of cka"):
        pairwise("cka", [X], [Y], sigma=1.0)
    with pytest.raises(ConfigError, match="at least one"):
        pairwise("cka", [], [Y])
    with pytest.raises(DegenerateFeaturesError, match="at least 4 samples"):
        pairwise("debiased-cka", [X[:3]], [Y[:3]])
