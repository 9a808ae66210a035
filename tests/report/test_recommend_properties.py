"""Property tests of the rule: the interval is the test, and ties never give certainty."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.report.recommend import MIN_SEEDS_HIGH, recommend, score_pilots


@st.composite
def pilots(draw):
    """k methods x n seeds of accuracies measured on n_val images (so ties happen)."""
    k = draw(st.integers(2, 5))
    n = draw(st.integers(1, 6))
    n_val = draw(st.sampled_from([20, 100, 1000, 10**6]))
    counts = draw(
        st.lists(st.lists(st.integers(0, n_val), min_size=n, max_size=n), min_size=k, max_size=k)
    )
    floor = draw(st.sampled_from([0.0, 0.005, 0.01, 0.03]))
    alpha = draw(st.sampled_from([0.01, 0.05, 0.2]))
    accs = {f"m{i}": [c / n_val for c in row] for i, row in enumerate(counts)}
    return accs, n_val, floor, alpha


@settings(max_examples=80, deadline=None)
@given(pilots())
def test_verdict_is_the_interval(case):
    accs, n_val, floor, alpha = case
    rec = recommend(score_pilots(accs, n_val), alpha=alpha, seed_sd_floor=floor, default="none")
    others = rec.ranking.iloc[1:]
    assert math.isfinite(rec.z)
    assert np.isfinite(others[["diff_low", "diff_high", "se_diff"]].to_numpy()).all()
    assert (others["se_diff"] > 0).all() and (others["diff_low"] <= others["diff"]).all()
    # each "detectably worse" is exactly a lower bound above zero ...
    assert (others["tied"] == ~(others["diff_low"] > 0)).all()
    # ... and the same as the corrected p-value, away from the boundary
    clear = (others["p_adj"] - alpha).abs() > 1e-9
    assert ((others["p_adj"] < alpha) == (others["diff_low"] > 0))[clear].all()
    # the verdict "best" iff every lower bound is above zero
    assert (rec.outcome == "best") == bool((others["diff_low"] > 0).all())
    if rec.confidence == "high":
        assert rec.outcome == "best" and rec.n_seeds >= MIN_SEEDS_HIGH
    assert abs(rec.ranking["p_best"].sum() - 1) < 1e-9
    assert set(rec.power) == {"1", "2"} and all(0 <= p <= 1 for p in rec.power.values())


@settings(max_examples=80, deadline=None)
@given(
    st.integers(2, 5),
    st.integers(1, 3),
    st.sampled_from([10, 100, 1000, 10**6]),
    st.sampled_from([0.0, 0.01]),
    st.data(),
)
def test_ties_and_one_image_never_give_a_winner(k, n, n_val, floor, data):
    base = data.draw(st.lists(st.integers(0, n_val - 1), min_size=n, max_size=n))
    # every method equal, or ahead by one image on every seed (the t = inf case)
    ahead = data.draw(st.lists(st.integers(0, 1), min_size=k, max_size=k))
    accs = {f"m{i}": [(c + a) / n_val for c in base] for i, a in enumerate(ahead)}
    rec = recommend(score_pilots(accs, n_val), seed_sd_floor=floor, default="none")
    assert rec.outcome != "best" and rec.confidence != "high"
    assert rec.ranking["p_best"].max() < 0.99
