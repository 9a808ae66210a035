"""Linear and RBF CKA against NumPy transcriptions of Kornblith et al.'s reference code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import ortho_group

from spectral_probe.errors import SpectralProbeError
from spectral_probe.similarity import DegenerateFeaturesError, linear_cka, rbf_cka


def center_gram(gram: np.ndarray, unbiased: bool = False) -> np.ndarray:
    """Kornblith et al. (2019) ``center_gram``: double centring, or U-centring when unbiased."""
    gram = gram.copy()
    n = gram.shape[0]
    if unbiased:
        np.fill_diagonal(gram, 0)
        means = gram.sum(0) / (n - 2)
        means -= means.sum() / (2 * (n - 1))
        gram -= means[:, None]
        gram -= means[None, :]
        np.fill_diagonal(gram, 0)
    else:
        means = gram.mean(0)
        means -= means.mean() / 2
        gram -= means[:, None]
        gram -= means[None, :]
    return gram


def np_cka(gx: np.ndarray, gy: np.ndarray, debiased: bool = False) -> float:
    gx, gy = center_gram(gx, debiased), center_gram(gy, debiased)
    return float(gx.ravel() @ gy.ravel() / (np.linalg.norm(gx) * np.linalg.norm(gy)))


def np_gram_rbf(x: np.ndarray, threshold: float) -> np.ndarray:
    dot = x @ x.T
    sq = np.diag(dot)
    d2 = -2 * dot + sq[:, None] + sq[None, :]
    return np.exp(-d2 / (2 * threshold**2 * np.median(d2)))


def np_hsic_song(k: np.ndarray, l: np.ndarray) -> float:
    """Song et al. (2012) unbiased HSIC, written term by term."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (
        np.trace(k @ l)
        + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
        - 2 / (n - 2) * one @ k @ l @ one
    ) / (n * (n - 3))


def _pair(n: int, p: int, q: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p)) + 3.0  # off-centre on purpose
    y = x[:, : min(p, q)] @ rng.normal(size=(min(p, q), q)) + 0.5 * rng.normal(size=(n, q))
    return x, y


@pytest.mark.parametrize(("n", "p", "q"), [(40, 5, 8), (12, 30, 20), (7, 3, 3)])
@pytest.mark.parametrize("form", ["features", "gram", "auto"])
def test_linear_cka_matches_kornblith(n, p, q, form):
    x, y = _pair(n, p, q, seed=n + p)
    assert linear_cka(x, y, form=form) == pytest.approx(np_cka(x @ x.T, y @ y.T), abs=1e-12)
    deb = linear_cka(x, y, debiased=True, form=form)
    assert deb == pytest.approx(np_cka(x @ x.T, y @ y.T, debiased=True), abs=1e-10)
    xc, yc = x - x.mean(0), y - y.mean(0)
    song = np_hsic_song(xc @ xc.T, yc @ yc.T) / np.sqrt(
        np_hsic_song(xc @ xc.T, xc @ xc.T) * np_hsic_song(yc @ yc.T, yc @ yc.T)
    )
    assert deb == pytest.approx(song, abs=1e-10)


def test_linear_cka_feature_space_formula():
    x, y = _pair(30, 6, 4, seed=3)
    xc, yc = x - x.mean(0), y - y.mean(0)
    ref = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(torch.from_numpy(x).float(), torch.from_numpy(y).float()) == pytest.approx(
        ref, rel=1e-6
    )


@pytest.mark.parametrize("sigma", [0.4, 0.8, 2.0])
def test_rbf_cka_matches_kornblith(sigma):
    x, y = _pair(25, 6, 4, seed=5)
    ref = np_cka(np_gram_rbf(x, sigma), np_gram_rbf(y, sigma))
    assert rbf_cka(x, y, sigma) == pytest.approx(ref, abs=1e-12)
    x, y = x[:24], y[:24]  # an even number of distances: the median averages the middle two
    assert rbf_cka(x, y, sigma) == pytest.approx(
        np_cka(np_gram_rbf(x, sigma), np_gram_rbf(y, sigma)), abs=1e-12
    )


shapes = st.tuples(st.integers(5, 40), st.integers(1, 12), st.integers(0, 2**31 - 1))


@settings(max_examples=30, deadline=None)
@given(shapes, st.floats(0.01, 100.0))
def test_cka_invariant_to_rotation_and_isotropic_scaling_and_symmetric(shape, scale):
    n, p, seed = shape
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, p))
    q = ortho_group.rvs(p, random_state=seed) if p > 1 else np.array([[-1.0]])
    y = rng.normal(size=(n, p + 2))
    for debiased in (False, True):
        assert linear_cka(x, scale * x @ q + 7.0, debiased) == pytest.approx(1.0, abs=1e-9)
        assert linear_cka(x, y, debiased) == pytest.approx(linear_cka(y, x, debiased), abs=1e-12)
    assert rbf_cka(x, scale * x @ q) == pytest.approx(1.0, abs=1e-9)
    assert rbf_cka(x, y) == pytest.approx(rbf_cka(y, x), abs=1e-12)
    assert 0.0 <= linear_cka(x, y) <= 1.0 + 1e-12


def test_debiased_cka_of_independent_noise_is_about_zero_while_plain_is_not():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 150)), rng.normal(size=(200, 150))
    assert abs(linear_cka(x, y, debiased=True)) < 0.02
    assert linear_cka(x, y) > 0.4  # the bias the debiased estimator removes (p ~ N)


def test_degenerate_inputs_raise_one_line_errors():
    x = np.random.default_rng(0).normal(size=(10, 3))
    const = np.full((10, 3), 2.5)
    for fn in (linear_cka, rbf_cka, lambda a, b: linear_cka(a, b, debiased=True)):
        with pytest.raises(DegenerateFeaturesError, match="constant"):
            fn(x, const)
        with pytest.raises(DegenerateFeaturesError, match="constant"):
            fn(const, x)
    for n in (1, 2, 3):
        with pytest.raises(DegenerateFeaturesError, match=r"at least 4 samples .*N = " + str(n)):
            linear_cka(x[:n], x[:n], debiased=True)
    with pytest.raises(DegenerateFeaturesError, match="at least 2 samples"):
        linear_cka(x[:1], x[:1])
    with pytest.raises(SpectralProbeError, match="same samples"):
        linear_cka(x, x[:5])
    with pytest.raises(SpectralProbeError, match="finite"):
        linear_cka(np.where(x > 1, np.nan, x), x)
    with pytest.raises(SpectralProbeError, match=r"shape \(N, d\)"):
        linear_cka(x[0], x)
    with pytest.raises(SpectralProbeError, match="sigma > 0"):
        rbf_cka(x, x, 0.0)
    with pytest.raises(SpectralProbeError, match="form"):
        linear_cka(x, x, form="fast")  # type: ignore[arg-type]
