"""Regret and rank correlations against hand-computed cases and SciPy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.validation.stats import kendall_tau, regret, regret_summary, weighted_tau


def test_kendall_tau_hand_cases():
    assert kendall_tau([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    # pairs (1,2) + (1,3) + (2,3) -: (1 + 1 - 1) / 3
    assert kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # tie in x: pairs untied in x = 2, in y = 3; concordant 2 -> 2 / sqrt(6)
    assert kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / np.sqrt(6))
    assert np.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))


def test_weighted_tau_hand_case():
    # x = y except the last two swapped; ranks 0..3 weigh 1, 1/2, 1/3, 1/4.
    # The only discordant pair is (2, 3): weight 1/3 + 1/4 = 7/12; total weight of the six
    # pairs = 3 * (1 + 1/2 + 1/3 + 1/4) = 25/4, so tau = (25/4 - 2 * 7/12) / (25/4) = 61/75.
    assert weighted_tau([4, 3, 2, 1], [4, 3, 1, 2]) == pytest.approx(61 / 75)
    # a swap at the top costs more than the same swap at the bottom
    assert weighted_tau([4, 3, 2, 1], [3, 4, 2, 1]) < weighted_tau([4, 3, 2, 1], [4, 3, 1, 2])


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=12).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 4), min_size=n, max_size=n),
            st.lists(st.integers(0, 4), min_size=n, max_size=n),
        )
    )
)
def test_taus_match_scipy_with_ties(pair):
    x, y = (np.asarray(v, dtype=float) for v in pair)
    ref = scipy.stats.kendalltau(x, y).statistic
    ours = kendall_tau(x, y)
    assert (np.isnan(ours) and np.isnan(ref)) or ours == pytest.approx(ref, abs=1e-12)
    ref_w = scipy.stats.weightedtau(x, y).statistic
    ours_w = weighted_tau(x, y)
    assert (np.isnan(ours_w) and np.isnan(ref_w)) or ours_w == pytest.approx(ref_w, abs=1e-12)


def test_regret_and_summary_hand_case():
    assert regret({"a": 80.0, "b": 81.5, "c": 79.0}, "a") == 1.5
    assert regret({"a": 80.0, "b": 81.5}, "b") == 0.0
    with pytest.raises(ValueError, match="one of"):
        regret({"a": 1.0}, "z")
    tidy = pd.DataFrame(
        {
            "task": ["t1", "t2", "t3", "t1", "t2", "t3"],
            "policy": ["p", "p", "p", "q", "q", "q"],
            "regret": [0.0, 0.5, 2.5, 0.2, 0.6, 0.7],
        }
    )
    out = regret_summary(tidy).set_index("policy")
    assert out.loc["p", "regret"] == pytest.approx(1.0)
    assert out.loc["p", "max_regret"] == 2.5
    assert out.loc["p", "share_within"] == pytest.approx(2 / 3)  # 0.5 counts as within
    assert out.loc["q", "regret"] == pytest.approx(0.5)
    assert out.loc["q", "share_within"] == pytest.approx(1 / 3)
    assert list(out.index) == ["q", "p"]  # sorted by mean regret


def test_paired_difference_against_scipy():
    from scipy import stats

    from spectral_probe.validation.stats import paired_difference

    rng = np.random.default_rng(0)
    a, b = rng.normal(1, 1, 12), rng.normal(0.5, 1, 12)
    r = paired_difference(a, b, level=0.9)
    d = a - b
    assert r.mean == pytest.approx(d.mean())
    assert r.p_t == pytest.approx(stats.ttest_rel(a, b).pvalue)
    lo, hi = stats.t.interval(0.9, 11, loc=d.mean(), scale=stats.sem(d))
    assert (r.ci_low, r.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert r.p_sign == pytest.approx(stats.binomtest(int((d > 0).sum()), 12).pvalue)
    tied = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (tied.ties, tied.mean, tied.p_t, tied.p_sign) == (3, 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        paired_difference([1.0], [0.0])
