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
    detection_power,
    paired_comparison,
    prob_best,
    recommend,
    score_pilots,
)

BIG = 10**9  # validation images: the binomial floor is negligible


def _floor(pa: float, pb: float, n_val: int, sd_floor: float) -> float:
    """The difference floor of docs/report.md, transcribed independently."""

    def var(p: float) -> float:
        q = (p * n_val + 1) / (n_val + 2)
        return q * (1 - q) / n_val

    return math.sqrt(2 * sd_floor**2 + var(pa) + var(pb))


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=8).flatmap(
        lambda n: st.tuples(
            st.lists(st.floats(0.3, 0.9), min_size=n, max_size=n),
            st.lists(st.floats(0.3, 0.9), min_size=n, max_size=n),
        )
    ),
    st.sampled_from([500, 5000, BIG]),
    st.sampled_from([0.0, 0.005, 0.01]),
)
def test_paired_comparison_is_ttest_rel_with_a_floor(pair, n_val, sd_floor):
    a, b = pair
    d = np.subtract(a, b)
    n = len(d)
    c = paired_comparison(
        PilotScore("x", tuple(a), n_val), PilotScore("y", tuple(b), n_val), sd_floor
    )
    # with two or more seeds the floor is the validation split's binomial noise alone: the
    # seed-sd floor only stands in where no spread is measured
    f = _floor(float(np.mean(a)), float(np.mean(b)), n_val, sd_floor if len(a) == 1 else 0.0)
    assert c.floor == pytest.approx(f, rel=1e-12) and math.isfinite(c.t)
    assert c.df == n - 1 and c.n == n
    sd = float(np.std(d, ddof=1))
    if sd >= f * (1 + 1e-9):  # the measured spread rules: exactly scipy's paired t-test
        ref = scipy.stats.ttest_rel(a, b, alternative="greater")
        assert not c.floored
        assert c.t == pytest.approx(ref.statistic, rel=1e-9)
        assert c.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
    elif sd < f * (1 - 1e-9):  # the floor rules: t = mean(d) / (f / sqrt(n))
        t = float(np.mean(d)) / (f / math.sqrt(n))
        assert c.floored
        assert c.t == pytest.approx(t, rel=1e-9, abs=1e-12)
        assert c.p == pytest.approx(scipy.stats.t.sf(t, n - 1), rel=1e-7, abs=1e-12)


def test_pairing_follows_seeds_not_order():
    best = PilotScore("a", (0.80, 0.70, 0.75), BIG, seeds=(0, 1, 2))
    other = PilotScore("b", (0.72, 0.79, 0.69), BIG, seeds=(2, 0, 1))  # same as (0.79, 0.69, 0.72)
    c = paired_comparison(best, other, floor=0.0)
    ref = scipy.stats.ttest_rel([0.80, 0.70, 0.75], [0.79, 0.69, 0.72], alternative="greater")
    assert c.t == pytest.approx(ref.statistic)
    with pytest.raises(ValueError, match="share pilot seeds"):
        paired_comparison(best, PilotScore("c", (0.5,), 100, seeds=(9,)))


def test_one_seed_uses_the_floor():
    best, other = PilotScore("a", (0.82,), 1000), PilotScore("b", (0.80,), 1000)
    assert math.isnan(best.std)
    qa, qb = 821 / 1002, 801 / 1002  # Laplace: (p n + 1) / (n + 2)
    assert best.se(0.01) == pytest.approx(math.sqrt(0.01**2 + qa * (1 - qa) / 1000))
    c = paired_comparison(best, other, floor=0.01)
    se = math.sqrt(2 * 0.01**2 + (qa * (1 - qa) + qb * (1 - qb)) / 1000)
    assert c.se == pytest.approx(se) and math.isinf(c.df) and c.floored
    assert c.p == pytest.approx(scipy.stats.norm.sf(0.02 / se))


def test_zero_spread_is_floored_not_infinite():
    # the case: one image of 1000 apart on every seed gave t = inf, p = 0, "high"
    accs = {"a": [0.801, 0.751, 0.781], "b": [0.800, 0.750, 0.780]}
    rec = recommend(score_pilots(accs, n_val=1000))
    c = paired_comparison(*sorted(score_pilots(accs, 1000), key=lambda s: -s.mean))
    assert c.floored and math.isfinite(c.t) and c.p > 0.4
    assert rec.outcome != "best" and rec.confidence == "low" and math.isfinite(rec.z)
    row = rec.ranking.set_index("method").loc["b"]
    assert row["diff_low"] < 0 < row["diff_high"] and bool(row["tied"])
    # identical accuracies, even at 100%: t = 0, never a winner
    same = recommend(
        score_pilots({"a": [1.0, 1.0, 1.0], "b": [1.0, 1.0, 1.0]}, n_val=50), seed_sd_floor=0
    )
    assert same.outcome != "best" and same.z == 0.0
    # a real 10-point lead with no spread is still detected: the floor is the binomial noise
    lead = recommend(score_pilots({"a": [0.90, 0.90, 0.90], "b": [0.80, 0.80, 0.80]}, n_val=2000))
    assert lead.outcome == "best" and lead.confidence == "high"


def test_the_interval_is_the_test():
    # the case: t = 4.95 with 2 df, best of 5; the old two-sided unadjusted interval
    # [0.26, 3.74] points excluded zero while the test said "no detectable difference"
    d = np.array([0.013, 0.02, 0.027])  # mean 2 points, sd 0.7: t = 4.95
    se = d.std(ddof=1) / math.sqrt(3)
    b = 0.70 + np.array([0.0, 0.01, -0.01])
    accs = {"a": list(b + d), "b": list(b), "c": [0.3] * 3, "d": [0.2] * 3, "e": [0.1] * 3}
    rec = recommend(score_pilots(accs, n_val=BIG), seed_sd_floor=0.0, default="zzz")
    row = rec.ranking.set_index("method").loc["b"]
    t = 0.02 / se
    assert t == pytest.approx(rec.z) and 4 < t < 6.2  # below t_{1-0.05/4, 2} = 6.21
    q = scipy.stats.t.ppf(1 - 0.05 / 4, 2)
    assert row["diff_low"] == pytest.approx(0.02 - q * se) and row["diff_high"] == pytest.approx(
        0.02 + q * se
    )
    assert row["diff_low"] < 0 and row["tied"] and rec.outcome == "best-untested"
    assert row["p_adj"] == pytest.approx(4 * scipy.stats.t.sf(t, 2)) and row["p_adj"] > 0.05
    assert any("in [" in r and "No detectable difference" in r for r in rec.reasons)
    assert rec.level == pytest.approx(0.0125)


def test_high_needs_three_seeds():
    two = score_pilots({"l2": [0.70, 0.71], "l2+bss": [0.80, 0.815]}, n_val=2000)
    rec2 = recommend(two)
    assert rec2.confidence != "high"
    three = score_pilots({"l2": [0.70, 0.71, 0.705], "l2+bss": [0.80, 0.815, 0.81]}, n_val=2000)
    rec3 = recommend(three)
    assert rec3.method == "l2+bss" and rec3.confidence == "high" and rec3.outcome == "best"
    assert rec3.ranking["tied"].tolist() == [True, False]
    assert rec3.ranking["diff_low"].iloc[1] > 0


def test_best_of_k_correction_can_remove_a_winner():
    # one-sided p of a vs b with 3 seeds is ~0.03: significant alone, not after x4 (k = 5)
    accs = {"a": [0.80, 0.82, 0.81], "b": [0.78, 0.81, 0.795]}
    p = scipy.stats.ttest_rel(accs["a"], accs["b"], alternative="greater").pvalue
    assert 0.0125 < p < 0.05
    assert recommend(score_pilots(accs, n_val=BIG), seed_sd_floor=0).outcome == "best"
    more = dict(accs, c=[0.5, 0.5, 0.5], d=[0.4, 0.4, 0.41], e=[0.3, 0.3, 0.31])
    rec = recommend(score_pilots(more, n_val=BIG), default="zzz", seed_sd_floor=0)
    row = rec.ranking.set_index("method").loc["b"]
    assert row["p_adj"] == pytest.approx(4 * p) and row["tied"]
    assert rec.outcome == "best-untested" and rec.method == "a" and rec.confidence == "low"
    # on 500 validation images the binomial floor (2.5 points per seed) is above the measured
    # spread of 0.5 points: it is not believed, and not even the uncorrected test decides
    floored = recommend(score_pilots(accs, n_val=500))
    assert floored.outcome != "best" and floored.ranking["floored"].iloc[1]


def test_no_detectable_difference_uses_the_default():
    accs = {"l2": [0.80, 0.79], DEFAULT_METHOD: [0.795, 0.80], "l2-sp": [0.60, 0.61]}
    rec = recommend(score_pilots(accs, n_val=1000))
    assert rec.method == DEFAULT_METHOD and rec.outcome == "default" and rec.confidence == "low"
    assert any("No detectable difference: use" in r for r in rec.reasons)
    assert any("between" in r and " in [" in r for r in rec.reasons)  # quotes the interval
    # a default detectably worse than the best is not used
    worse = {
        "l2": [0.80, 0.81, 0.80],
        "l2-sp": [0.805, 0.80, 0.80],
        DEFAULT_METHOD: [0.50, 0.51, 0.52],
    }
    assert DEFAULT_METHOD not in {"l2", "l2-sp"} and len(worse) == 3
    rec = recommend(score_pilots(worse, n_val=1000))
    assert rec.method in {"l2", "l2-sp"} and rec.outcome == "best-untested"


def test_prob_best_hand_cases():
    # two methods: P(best) is 1 - p of the one-sided paired test (up to Monte Carlo error)
    s = score_pilots({"a": [0.8, 0.7, 0.9], "b": [0.7, 0.6, 0.85]}, n_val=1000)
    c = paired_comparison(s[0], s[1])
    p = prob_best(s)
    assert p["a"] == pytest.approx(1 - c.p, abs=0.01) and p["a"] + p["b"] == pytest.approx(1)
    assert p["a"] < 0.99  # winning every one of 3 seeds is not certainty
    # identical methods split about evenly
    same = prob_best(score_pilots({"a": [0.8, 0.7], "b": [0.8, 0.7]}, n_val=100))
    assert same["a"] == pytest.approx(0.5, abs=0.02)
    # one seed: the higher mean is more often best; sums to 1
    one = score_pilots({"a": [0.81], "b": [0.80], "c": [0.5]}, n_val=1000)
    p = prob_best(one)
    assert p["a"] > p["b"] > p["c"] and sum(p.values()) == pytest.approx(1.0)
    assert recommend(one).ranking["p_best"].sum() == pytest.approx(1.0)
    # a clear winner is near 1
    clear = prob_best(score_pilots({"a": [0.9, 0.91, 0.9], "b": [0.5, 0.52, 0.5]}, n_val=1000))
    assert clear["a"] > 0.999


def test_student_t_interval():
    rec = recommend(
        score_pilots({"l2": [0.8, 0.82, 0.78], "l2+bss": [0.5, 0.5, 0.5]}, n_val=BIG),
        seed_sd_floor=0,
    )
    row = rec.ranking.set_index("method").loc["l2"]
    half = scipy.stats.t.ppf(0.975, 2) * 0.02 / math.sqrt(3)
    assert row["ci_low"] == pytest.approx(0.8 - half) and row["ci_high"] == pytest.approx(
        0.8 + half
    )
    # the mean's interval is floored too: the 0.5 column has no spread
    flat = rec.ranking.set_index("method").loc["l2+bss"]
    f = math.sqrt((0.5 * BIG + 1) / (BIG + 2) * (1 - (0.5 * BIG + 1) / (BIG + 2)) / BIG)
    assert flat["se"] == pytest.approx(f / math.sqrt(3)) and flat["ci_high"] > flat["ci_low"]


def test_power_against_the_noncentral_t():
    for n, k in ((2, 2), (3, 5), (5, 3), (8, 6)):
        q = scipy.stats.t.ppf(1 - 0.05 / (k - 1), n - 1)
        for delta in (0.01, 0.02):
            ref = scipy.stats.nct.sf(q, n - 1, delta * math.sqrt(n) / 0.01)
            got = detection_power(delta, n, k, sd=0.01, floor=0.0)
            assert got == pytest.approx(ref, rel=1e-6, abs=1e-9)
    # one seed: the normal test of the rule
    z = scipy.stats.norm.ppf(1 - 0.05 / 4)
    assert detection_power(0.02, 1, 5, sd=0.01) == pytest.approx(scipy.stats.norm.sf(z - 2))
    # the floor only removes power; more seeds add it
    assert detection_power(0.02, 3, 5, sd=0.01) < detection_power(0.02, 3, 5, sd=0.01, floor=0.0)
    assert detection_power(0.02, 3, 5, sd=0.01) < detection_power(0.02, 6, 5, sd=0.01)
    with pytest.raises(ValueError, match="n_seeds"):
        detection_power(0.02, 0, 5, sd=0.01)


def test_power_with_the_floor_matches_a_simulation_of_the_rule():
    rng = np.random.default_rng(7)
    n, k, delta, sd = 4, 3, 0.03, 0.015
    q = scipy.stats.t.ppf(1 - 0.05 / (k - 1), n - 1)
    d = delta + sd * rng.standard_normal((40000, n))
    s_eff = np.maximum(d.std(axis=1, ddof=1), sd)
    sim = np.mean(d.mean(axis=1) - q * s_eff / math.sqrt(n) > 0)
    assert detection_power(delta, n, k, sd=sd) == pytest.approx(sim, abs=0.01)
    # the rule itself agrees with that transcription on a few of those experiments
    for row in d[:30]:
        base = 0.5 + 0.01 * rng.standard_normal(n)
        a, b = PilotScore("a", tuple(base + row), BIG), PilotScore("b", tuple(base), BIG)
        f = sd / math.sqrt(2)  # per-method floor giving a difference floor of sd
        c = paired_comparison(a, b, f)
        low, _ = c.bounds(0.05 / (k - 1))
        expect = row.mean() - q * max(row.std(ddof=1), c.floor) / math.sqrt(n)
        assert low == pytest.approx(expect, abs=1e-9)


def test_report_states_power():
    accs = {"l2": [0.80, 0.79, 0.81], "l2+bss": [0.795, 0.80, 0.80], "l2-sp": [0.6, 0.61, 0.6]}
    rec = recommend(score_pilots(accs, n_val=1000))
    sd, rule = _floor(0.8, 0.8, 1000, 0.01), _floor(0.8, 0.8, 1000, 0.0)
    assert set(rec.power) == {"1", "2"} and rec.n_seeds == 3
    # power at the assumed seed noise (1 point per method + validation noise), the rule
    # flooring at the validation noise alone
    assert rec.power["2"] == pytest.approx(detection_power(0.02, 3, 3, sd=sd, floor=rule))
    assert rec.power["1"] <= rec.power["2"] < 0.5  # three seeds cannot find 2 points here


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


def test_three_pilot_seeds_by_default():
    s = ReportSettings(model="bundled:efficientnet_lite0", data="digits")
    assert s.seeds == (0, 1, 2)


def test_prob_best_without_shared_seeds_falls_back_to_unpaired():
    a = PilotScore("a", (0.80, 0.82), 1000, seeds=(0, 1))
    b = PilotScore("b", (0.70, 0.71), 1000, seeds=(0, 1))
    c = PilotScore("c", (0.75, 0.76), 1000, seeds=(5, 6))  # shares no seed with a or b
    p = prob_best([a, b, c])
    assert sum(p.values()) == pytest.approx(1.0) and p["a"] > p["c"] > p["b"]
    with pytest.raises(ValueError, match="share pilot seeds"):
        recommend([a, b, c])  # the best must be paired with every other method
