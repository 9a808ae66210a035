"""The recommendation rule, case by case, and its statistics against SciPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.report import ReportSettings, pilot_configs
from spectral_probe.report.recommend import (
    DEFAULT_METHOD,
    PilotScore,
    paired_comparison,
    prob_best,
    recommend,
    score_pilots,
)


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=2, max_value=8).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(0.3, 0.9), min_size=n, max_size=n),
            st.lists(st.floats(0.3, 0.9), min_size=n, max_size=n),
        )
    )
)
def test_paired_comparison_is_ttest_rel(pair):
    a, b = pair
    d = np.subtract(a, b)
    if np.ptp(d) < 1e-9:  # no spread: SciPy gives nan/inf
        return
    c = paired_comparison(PilotScore("x", tuple(a), 500), PilotScore("y", tuple(b), 500))
    ref = scipy.stats.ttest_rel(a, b, alternative="greater")
    assert c.t == pytest.approx(ref.statistic, rel=1e-9)
    assert c.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
    assert c.df == len(a) - 1 and c.n == len(a)


def test_pairing_follows_seeds_not_order():
    best = PilotScore("a", (0.80, 0.70, 0.75), 100, seeds=(0, 1, 2))
    other = PilotScore("b", (0.72, 0.79, 0.69), 100, seeds=(2, 0, 1))  # same as (0.79, 0.69, 0.72)
    c = paired_comparison(best, other)
    ref = scipy.stats.ttest_rel([0.80, 0.70, 0.75], [0.79, 0.69, 0.72], alternative="greater")
    assert c.t == pytest.approx(ref.statistic)
    with pytest.raises(ValueError, match="share pilot seeds"):
        paired_comparison(best, PilotScore("c", (0.5,), 100, seeds=(9,)))


def test_one_seed_uses_the_floor():
    best, other = PilotScore("a", (0.82,), 1000), PilotScore("b", (0.80,), 1000)
    assert math.isnan(best.std)
    assert best.se(0.01) == pytest.approx(math.sqrt(0.01**2 + 0.82 * 0.18 / 1000))
    c = paired_comparison(best, other, floor=0.01)
    se = math.sqrt(2 * 0.01**2 + (0.82 * 0.18 + 0.8 * 0.2) / 1000)
    assert c.se == pytest.approx(se) and math.isinf(c.df)
    assert c.p == pytest.approx(scipy.stats.norm.sf(0.02 / se))


def test_high_needs_three_seeds():
    two = score_pilots({"l2": [0.70, 0.71], "l2+bss": [0.80, 0.815]}, n_val=2000)
    rec2 = recommend(two)
    assert rec2.confidence != "high"
    three = score_pilots({"l2": [0.70, 0.71, 0.705], "l2+bss": [0.80, 0.815, 0.81]}, n_val=2000)
    rec3 = recommend(three)
    assert rec3.method == "l2+bss" and rec3.confidence == "high" and rec3.outcome == "best"
    assert rec3.ranking["tied"].tolist() == [True, False]


def test_best_of_k_correction_can_remove_a_winner():
    # one-sided p of a vs b with 3 seeds is ~0.03: significant alone, not after x4 (k = 5)
    accs = {"a": [0.80, 0.82, 0.81], "b": [0.78, 0.81, 0.795]}
    p = scipy.stats.ttest_rel(accs["a"], accs["b"], alternative="greater").pvalue
    assert 0.0125 < p < 0.05
    assert recommend(score_pilots(accs, n_val=5000)).outcome == "best"
    more = dict(accs, c=[0.5, 0.5, 0.5], d=[0.4, 0.4, 0.41], e=[0.3, 0.3, 0.31])
    rec = recommend(score_pilots(more, n_val=5000), default="zzz")
    row = rec.ranking.set_index("method").loc["b"]
    assert row["p_adj"] == pytest.approx(4 * p) and row["tied"]
    assert rec.outcome == "best-untested" and rec.method == "a" and rec.confidence == "low"


def test_no_detectable_difference_uses_the_default():
    accs = {"l2": [0.80, 0.79], DEFAULT_METHOD: [0.795, 0.80], "l2-sp": [0.60, 0.61]}
    rec = recommend(score_pilots(accs, n_val=1000))
    assert rec.method == DEFAULT_METHOD and rec.outcome == "default" and rec.confidence == "low"
    assert any("No detectable difference: use" in r for r in rec.reasons)
    # a default detectably worse than the best is not used
    worse = {
        "l2": [0.80, 0.81, 0.80],
        "l2+bss": [0.805, 0.80, 0.80],
        DEFAULT_METHOD: [0.50, 0.51, 0.52],
    }
    rec = recommend(score_pilots(worse, n_val=1000))
    assert rec.method in {"l2", "l2+bss"} and rec.outcome == "best-untested"


def test_prob_best_hand_cases():
    # a beats b on every seed: a is best in every Dirichlet redraw
    s = score_pilots({"a": [0.8, 0.7, 0.9], "b": [0.7, 0.6, 0.85]}, n_val=100)
    assert prob_best(s) == {"a": 1.0, "b": 0.0}
    # identical methods split evenly
    same = score_pilots({"a": [0.8, 0.7], "b": [0.8, 0.7]}, n_val=100)
    assert prob_best(same) == {"a": 0.5, "b": 0.5}
    # one seed: normal noise with the floor; the higher mean is more often best, sums to 1
    one = score_pilots({"a": [0.81], "b": [0.80], "c": [0.5]}, n_val=1000)
    p = prob_best(one)
    assert p["a"] > p["b"] > p["c"] and sum(p.values()) == pytest.approx(1.0)
    ranking = recommend(one).ranking
    assert ranking["p_best"].sum() == pytest.approx(1.0)


def test_student_t_interval():
    rec = recommend(score_pilots({"l2": [0.8, 0.82, 0.78], "l2+bss": [0.5, 0.5, 0.5]}, n_val=100))
    row = rec.ranking.set_index("method").loc["l2"]
    half = scipy.stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    assert row["ci_low"] == pytest.approx(0.8 - half) and row["ci_high"] == pytest.approx(
        0.8 + half
    )


def test_single_method_and_bad_input():
    rec = recommend(score_pilots({"l2": [0.5, 0.6]}, n_val=10))
    assert rec.method == "l2" and rec.confidence == "low"
    with pytest.raises(ValueError, match="at least one pilot"):
        score_pilots({}, n_val=10)
    with pytest.raises(ValueError, match="finite validation accuracies"):
        score_pilots({"l2": [float("nan")]}, n_val=10)
    with pytest.raises(ValueError, match="alpha"):
        recommend(score_pilots({"l2": [0.5]}, n_val=10), alpha=1.5)


def test_pilots_share_seeds_and_splits():
    s = ReportSettings(
        model="bundled:efficientnet_lite0",
        data="digits",
        methods=("l2", "l2+bss", "delta+bss"),
        seeds=(0, 1, 2),
        iterations=5,
    )
    configs = pilot_configs(s)
    by_seed: dict[int, set[int]] = {}
    for cfg in configs:
        by_seed.setdefault(cfg.seed, set()).add(cfg.split_seed)
        assert cfg.data_seed is None or cfg.data_seed == cfg.seed
    assert {k: len(v) for k, v in by_seed.items()} == {0: 1, 1: 1, 2: 1}
    assert len({c.split_seed for c in configs}) == 3
