"""The deciding numbers and verdict rules of the reproduction page, on hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from spectral_probe.report.reproduction_numbers import (
    CLAIMS,
    FIGURES,
    RULES,
    mean_ci,
    sweep_finding,
    top_rest,
)
from spectral_probe.report.reproduction_spectra import spectrum_findings


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=2, max_size=8))
def test_mean_ci_is_the_student_t_interval(values):
    m, lo, hi, n = mean_ci(values)
    assert n == len(values) and m == pytest.approx(np.mean(values))
    if np.std(values) > 1e-9:
        ref = stats.t.interval(0.95, n - 1, loc=np.mean(values), scale=stats.sem(values))
        assert (lo, hi) == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_mean_ci_of_one_value_has_no_interval():
    m, lo, hi, n = mean_ci([2.0, float("nan")])
    assert (m, n) == (2.0, 1) and math.isnan(lo) and math.isnan(hi)


def test_top_rest_leading_tenth_and_the_stable_mask():
    cos = np.r_[np.ones(3), np.full(17, 0.2)]  # ceil(10% of 20) = 2 leading indices
    assert top_rest(cos) == pytest.approx((1.0, (1 + 17 * 0.2) / 18))
    keep = np.r_[True, False, np.ones(18, dtype=bool)]
    assert top_rest(-cos, keep) == pytest.approx((1.0, (1 + 17 * 0.2) / 18))
    assert math.isnan(top_rest(cos, np.zeros(20, dtype=bool))[0])
    assert top_rest(np.r_[cos, np.nan]) == pytest.approx((1.0, 0.2))  # n = 21: 3 leading indices


def _runs(rows):
    df = pd.DataFrame(rows, columns=["method", "rate", "rate_percent", "seed", "k", "r", "error"])
    df["run_id"] = [f"run{i}" for i in range(len(df))]
    return df


def test_tsvd_rule_needs_the_interval_below_zero_at_the_lowest_rate():
    rows = []
    for seed, noise in enumerate((0.0, 0.3, -0.2)):
        rows += [
            ("l2", "15%", 15.0, seed, 0, 0, 40 + noise),
            ("l2+tsvd", "15%", 15.0, seed, 0, 8, 37 + noise),
            ("l2+tsvd", "15%", 15.0, seed, 0, 1, 39 + noise),
            ("l2", "100%", 100.0, seed, 0, 0, 20 + noise),
            ("l2+tsvd", "100%", 100.0, seed, 0, 8, 20.5 + noise),
        ]
    f = sweep_finding("3a", _runs(rows))
    assert f.verdict == "reproduced" and not f.provisional
    assert f.numbers["lowest_delta"] == pytest.approx(-3.0) and f.numbers["lowest_x_max"] == 8
    assert f.numbers["highest_delta"] == pytest.approx(0.5)
    worse = _runs([(m, r, p, s, k, rr, e + (4 if rr == 8 else 0)) for m, r, p, s, k, rr, e in rows])
    assert sweep_finding("3a", worse).verdict == "not reproduced"
    assert sweep_finding("3d", _runs(rows)).verdict == "not yet run"  # no BSS runs


def test_bss_k_rule_compares_the_largest_k_with_k_1_and_one_seed_is_provisional():
    rows = [("l2+bss", "15%", 15.0, 0, 1, 0, 40.0), ("l2+bss", "15%", 15.0, 0, 4, 0, 39.0)]
    f = sweep_finding("3d", _runs(rows))
    assert f.verdict == "reproduced" and f.provisional and f.numbers["lowest_delta"] == -1.0
    assert math.isnan(f.numbers["lowest_ci_high"])
    assert "highest_delta" not in f.numbers  # one rate: no second comparison


def test_bss_k_rule_skips_a_rate_with_only_k_1():
    """The CPU sweep runs k = 8 at the lowest rate only: the highest rate has nothing to compare."""
    rows = [
        ("l2+bss", "1%", 1.0, s, k, 0, 30.0 - (k == 8) * (2 + 0.1 * s))
        for s in range(3)
        for k in (1, 8)
    ]
    rows += [("l2+bss", "50%", 50.0, s, 1, 0, 12.0) for s in range(3)]
    f = sweep_finding("3d", _runs(rows))
    assert f.verdict == "reproduced" and not f.provisional
    assert f.numbers["lowest_rate"] == "1%" and f.numbers["lowest_delta"] == pytest.approx(-2.1)
    assert not any(key.startswith("highest") for key in f.numbers)


def _batches(model: str, sigmas: list[list[float]]) -> pd.DataFrame:
    rows = []
    for b, s in enumerate(sigmas, 1):
        s = np.asarray(s, dtype=float)
        for i, v in enumerate(s, 1):
            rows.append(
                {
                    "model": model,
                    "layer": "x",
                    "batch": b,
                    "index": i,
                    "sigma": v,
                    "sigma_norm": v / s[0],
                    "energy": v**2 / (s**2).sum(),
                }
            )
    return pd.DataFrame(rows)


def test_spectrum_rules_on_hand_made_spectra():
    runs = _runs(
        [("l2", "1%", 1.0, s, 0, 0, 50.0) for s in (0, 1, 2)]
        + [("l2", "50%", 50.0, s, 0, 0, 20.0) for s in (0, 1, 2)]
        + [("l2+bss", "1%", 1.0, s, 1, 0, 49.0) for s in (0, 1, 2)]
        + [("l2+bss", "50%", 50.0, s, 1, 0, 19.0) for s in (0, 1, 2)]
    )
    frames = []
    for row in runs.itertuples():
        tail = 0.5 if row.rate == "1%" else 0.2  # less data: a heavier tail
        tail *= 0.5 if row.method == "l2+bss" else 1.0  # BSS shrinks it
        tail *= 1 + 0.01 * row.seed
        frames.append(
            _batches(row.run_id, [[4.0, 2.0, tail, tail / 2], [4.0, 2.0, tail * 1.1, tail / 2]])
        )
    fig1 = runs[runs["method"] == "l2"]
    found = spectrum_findings(pd.concat(frames), fig1, runs)
    assert {f: found[f].verdict for f in found} == dict.fromkeys(
        ("1c", "1d", "3b", "3c"), "reproduced"
    )

    # 1(d): the energy share of the smaller half (indices 3, 4 of 4), seed 0, 1% over 50%
    def share(t: float) -> float:
        return np.mean(
            [
                (t**2 + t**2 / 4) / (16 + 4 + t**2 + t**2 / 4),
                ((1.1 * t) ** 2 + t**2 / 4) / (16 + 4 + (1.1 * t) ** 2 + t**2 / 4),
            ]
        )

    ratios = [share(0.5 * (1 + 0.01 * s)) / share(0.2 * (1 + 0.01 * s)) for s in (0, 1, 2)]
    assert found["1d"].numbers["ratio"] == pytest.approx(np.mean(ratios))
    assert found["3b"].table["smallest4_below_1"].tolist() == [2, 2]  # indices 3 and 4 of 4 shrink
    assert found["3c"].table["ratio_tail"].iloc[0] < 1
    flipped = runs.assign(method=runs["method"].map({"l2": "l2+bss", "l2+bss": "l2"}))
    found = spectrum_findings(pd.concat(frames), fig1, flipped)
    assert found["3b"].verdict == "not reproduced" and found["3c"].verdict == "not reproduced"
    assert spectrum_findings(None, fig1, runs)["1c"].verdict == "not yet run"


def test_every_figure_has_a_claim_and_a_rule():
    assert set(CLAIMS) == set(RULES) == set(FIGURES)


def _comparison(cos: dict[str, np.ndarray], stable: dict[str, np.ndarray]):
    from spectral_probe.analysis import WeightComparison

    layers = pd.DataFrame({"layer": list(cos), "kind": "conv"})
    angles = pd.concat(
        [
            pd.DataFrame(
                {
                    "layer": n,
                    "index": np.arange(1, len(c) + 1),
                    "cos": c,
                    "resolvable": stable[n],
                    "cos_window": c,
                }
            )
            for n, c in cos.items()
        ],
        ignore_index=True,
    )
    return WeightComparison(
        layers=layers, angles=angles, principal=pd.DataFrame(), skipped=pd.DataFrame()
    )


LITE = [
    "conv_stem",
    "blocks.0.0.conv_dw",
    "blocks.0.0.conv_pw",
    "blocks.3.1.conv_pw",
    "blocks.6.0.conv_pw",
    "blocks.6.0.conv_pwl",
    "conv_head",
]


def test_depth_groups_are_the_first_conv_first_block_and_last_block():
    from spectral_probe.report.reproduction_numbers import depth_groups

    res = _comparison({n: np.ones(20) for n in LITE}, {n: np.ones(20, dtype=bool) for n in LITE})
    assert depth_groups(res) == (LITE[:3], LITE[4:6])


@pytest.mark.parametrize(
    ("higher_rest", "higher_rest_stable", "lower_rest", "lower_rest_stable", "verdict"),
    [
        (0.3, True, 0.99, True, "reproduced"),
        (0.3, False, 0.99, True, "not reproduced"),  # the decay sits on unstable indices only
        (0.3, True, 0.5, False, "reproduced only for stable indices"),
        (0.95, True, 0.99, True, "not reproduced"),  # no decay in the higher layers
    ],
)
def test_angle_rule(higher_rest, higher_rest_stable, lower_rest, lower_rest_stable, verdict):
    from spectral_probe.report.reproduction_numbers import angle_finding

    cos, stable = {}, {}
    for n in LITE:
        hi = n.startswith("blocks.6")
        rest = higher_rest if hi else lower_rest
        cos[n] = np.r_[np.ones(2), np.full(18, rest)]
        rs = higher_rest_stable if hi else lower_rest_stable
        # half of the rest indices take the flag; the other half stay stable and aligned
        stable[n] = np.r_[np.ones(2, dtype=bool), np.full(9, rs), np.ones(9, dtype=bool)]
        cos[n][11:] = 1.0 if not rs else cos[n][11:]
    runs = pd.DataFrame({"rate": ["100%"]})
    f = angle_finding({"a": _comparison(cos, stable)}, runs)
    assert f.verdict == verdict and f.provisional and f.numbers["n_seeds"] == 1
