"""Heavy-tailed ESD metrics: the power-law fit, its KS distance, the MP fit, degenerate spectra, WW parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spectral_probe.spectral import unfold_weight
from spectral_probe.spectral.esd import (
    MIN_EIGENVALUES,
    conv_slice_eigenvalues,
    eigenvalues,
    esd_metrics,
    fit_power_law,
    ks_distance,
    mp_fit,
    trained_warning,
)


def _pareto(alpha: float, n: int, xmin: float, seed: int) -> np.ndarray:
    """Samples with density proportional to x^-alpha on [xmin, inf) (inverse CDF)."""
    u = np.random.default_rng(seed).random(n)
    return xmin * (1.0 - u) ** (-1.0 / (alpha - 1.0))


def _reference_fit(x: np.ndarray) -> tuple[float, float]:
    """Clauset et al. by a plain loop over candidates (WeightWatcher's WWFit, transcribed)."""
    x = np.sort(x[x > 1e-5])
    logx = np.log(x)
    big = x.size >= 20
    best = (np.inf, math.nan, math.nan)
    for i in range(x.size - 1):
        n = x.size - i
        s = logx[i:].sum() - n * logx[i]
        a = 1 + (n if big else n - 1) / s
        if not big and (n < 8 or s <= 1e-12 or a <= 1):
            continue
        d = np.max(np.abs(1 - (x[i:] / x[i]) ** (1 - a) - np.arange(n) / n))
        if d < best[0]:
            best = (d, a, x[i])
    return best[1], best[2]


@pytest.mark.parametrize("alpha", [1.8, 2.5, 4.0])
def test_fit_recovers_alpha_of_a_pareto_tail(alpha):
    bulk = np.random.default_rng(1).uniform(0.01, 0.5, 400)
    x = np.concatenate([bulk, _pareto(alpha, 3000, 1.0, seed=2)])
    fit = fit_power_law(x)
    assert fit.ok and abs(fit.alpha - alpha) < 0.1
    assert 0.5 <= fit.xmin <= 1.5 and fit.n_tail >= 1500


@settings(max_examples=25, deadline=None)
@given(st.integers(8, 120), st.floats(1.5, 5.0), st.integers(0, 10_000))
def test_fit_matches_a_loop_over_candidates(n, alpha, seed):
    x = _pareto(alpha, n, 0.3, seed) + np.random.default_rng(seed).uniform(0, 0.2, n)
    a_ref, xmin_ref = _reference_fit(x)
    fit = fit_power_law(x)
    assert fit.alpha == pytest.approx(a_ref, rel=1e-10)
    assert fit.xmin == xmin_ref


def test_ks_distance_equals_scipy_kstest():
    x = np.concatenate(
        [np.random.default_rng(3).uniform(0.1, 1, 200), _pareto(3.0, 500, 1.0, seed=4)]
    )
    fit = fit_power_law(x)
    tail = x[x >= fit.xmin]
    ref = stats.kstest(tail, lambda v: 1 - (v / fit.xmin) ** (1 - fit.alpha)).statistic
    assert abs(fit.D - ref) < 1e-12
    assert ks_distance(tail, 2.0, fit.xmin) == pytest.approx(
        stats.kstest(tail, lambda v: 1 - (v / fit.xmin) ** (-1.0)).statistic, abs=1e-12
    )


@pytest.mark.parametrize(("m", "n"), [(600, 200), (300, 300)])
def test_mp_fit_of_a_gaussian_matrix_sits_at_the_bulk_edge(m, n):
    w = torch.randn(m, n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lam = eigenvalues(w).numpy()
    fit = mp_fit(lam, m, n)
    # unit-mean rescaling: the MP law of variance 1 has edge (1 + sqrt(n/m))^2
    edge = (1 + math.sqrt(n / m)) ** 2
    assert fit.reason is None and fit.softrank == pytest.approx(1.0, abs=0.1)
    assert fit.bulk_max == pytest.approx(edge, rel=0.1) and fit.num_spikes <= 2
    metrics = esd_metrics(lam, m, n)
    assert metrics["bulk_max"] == pytest.approx(lam.max(), rel=0.12)


def test_kde_matches_scikit_learn():
    from sklearn.neighbors import KernelDensity

    from spectral_probe.spectral.esd import _kde_linear

    pts = np.random.default_rng(5).gamma(2.0, 1.0, 300)
    grid = np.linspace(0, pts.max() + 0.5, 200)
    ref = np.exp(
        KernelDensity(kernel="linear", bandwidth=0.1).fit(pts[:, None]).score_samples(grid[:, None])
    )
    np.testing.assert_allclose(_kde_linear(pts, grid, 0.1), ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("lam", "reason"),
    [
        (np.full(50, 2.0), "are equal"),
        (np.r_[np.zeros(49), 3.0], "fewer than 8"),
        (np.zeros(50), "zero matrix"),
        (np.linspace(1, 2, MIN_EIGENVALUES - 1), "fewer than 8"),
    ],
)
def test_degenerate_spectra_give_missing_values_with_a_reason(lam, reason):
    m = esd_metrics(lam, 50, 60)
    assert math.isnan(m["alpha"]) and math.isnan(m["alpha_hat"]) and reason in m["alpha_reason"]
    assert m["warning"] == ""


def test_rank_one_matrix_from_a_real_matrix():
    u = torch.randn(40, 1, generator=torch.Generator().manual_seed(0))
    lam = eigenvalues(u @ u.T)
    m = esd_metrics(lam, 40, 40, mp=False)
    assert math.isnan(m["alpha"]) and "above" in m["alpha_reason"]
    assert m["stable_rank"] == pytest.approx(1.0, rel=1e-6)


def test_norm_metrics_by_hand():
    w = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64))
    m = esd_metrics(eigenvalues(w), 3, 3, mp=False)
    assert m["log_spectral_norm"] == pytest.approx(math.log10(9.0))
    assert m["log_norm"] == pytest.approx(math.log10(14.0))
    assert m["stable_rank"] == pytest.approx(14 / 9)


def test_warnings():
    assert trained_warning(1.5) == "over-trained"
    assert trained_warning(7.0) == "under-trained"
    assert trained_warning(3.0) == "" and trained_warning(math.nan) == ""


def test_conv_slices_pool_per_position_eigenvalues():
    w = torch.randn(6, 4, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = np.sort(
        np.concatenate(
            [
                np.linalg.svd(w[:, :, i, j].numpy(), compute_uv=False) ** 2
                for i in range(3)
                for j in range(3)
            ]
        )
    )
    np.testing.assert_allclose(
        conv_slice_eigenvalues(w, conv2d_norm=False).numpy(), ref, rtol=1e-10
    )
    np.testing.assert_allclose(conv_slice_eigenvalues(w).numpy(), ref / 2, rtol=1e-10)
    unfolded = eigenvalues(unfold_weight(w)).numpy()
    assert unfolded.size == 6 and not np.allclose(unfolded.sum(), ref.sum() / 2)


# --- parity with WeightWatcher 0.7.x (skips without it) -------------------------------------


def test_alpha_matches_weightwatcher_analyze_on_linear_and_conv_layers():
    ww = pytest.importorskip("weightwatcher")
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(300, 120),
        torch.nn.Linear(120, 64),
        torch.nn.Linear(64, 10),
        torch.nn.Conv2d(16, 32, 3),
    )
    with torch.no_grad():  # heavy-tailed weights, as trained layers have
        for mod in model:
            t = torch.distributions.StudentT(2.5).sample(mod.weight.shape)
            mod.weight.copy_(t * 0.05 + 0.01 * torch.randn(mod.weight.shape, generator=gen))
    details = ww.WeightWatcher(model=model).analyze()
    by_name = details.set_index("name")
    for idx, mod in enumerate(model):
        row = by_name.loc[str(idx)]
        if isinstance(mod, torch.nn.Conv2d):
            lam = conv_slice_eigenvalues(mod.weight)
        else:
            lam = eigenvalues(mod.weight.detach())
        m = esd_metrics(lam, *unfold_weight(mod.weight.detach()).shape, mp=False)
        assert m["alpha"] == pytest.approx(row["alpha"], rel=1e-4)
        assert m["xmin"] == pytest.approx(row["xmin"], rel=1e-4)
        assert m["n_tail"] == row["num_pl_spikes"]
        assert m["alpha_hat"] == pytest.approx(row["alpha_weighted"], rel=1e-4)
        assert m["log_norm"] == pytest.approx(row["log_norm"], rel=1e-6)
        assert m["stable_rank"] == pytest.approx(row["stable_rank"], rel=1e-6)
        assert m["warning"] == row["warning"]


def test_mp_fit_matches_weightwatcher_rmt_util():
    rmt = pytest.importorskip("weightwatcher.RMT_Util")
    w = torch.randn(300, 100, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    lam = eigenvalues(w).numpy()
    sigma_ref, _ = rmt.fit_density_with_range(lam * lam.size / lam.sum(), 3.0, bw=0.1)
    assert mp_fit(lam, 300, 100).sigma == pytest.approx(sigma_ref, rel=1e-8)
