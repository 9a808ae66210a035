"""The Table-2 retrospective: fixed-policy regret, on a hand case and on the shipped table."""

from __future__ import annotations

import pandas as pd
import pytest

from spectral_probe.training.aggregate import paper_table2
from spectral_probe.validation import retrospective


def test_hand_case():
    table = pd.DataFrame(
        {
            "dataset": ["a", "a", "b", "b"],
            "method": ["L2", "L2+BSS", "L2", "L2+BSS"],
            "sampling_rate_percent": [15, 15, 15, 15],
            "top1_mean": [70.0, 71.0, 60.0, 59.4],
            "top1_std": [0.1, 0.2, 0.3, 0.4],
        }
    )
    r = retrospective(table)
    pol = r.policies.set_index("policy")
    assert pol.loc["always L2", "regret"] == pytest.approx(0.5)  # (1.0 + 0) / 2
    assert pol.loc["always L2+BSS", "regret"] == pytest.approx(0.3)  # (0 + 0.6) / 2
    assert pol.loc["always L2+BSS", "share_within"] == 0.5
    assert r.best_policy == "always L2+BSS"
    assert r.cells["best"].tolist() == ["L2+BSS", "L2"]
    assert r.cells["gap_top2_old"].tolist() == pytest.approx([1.0, 0.6])
    assert r.cells["std_best"].tolist() == [0.2, 0.3]


def test_the_papers_table_independently():
    """The issue's claims, recomputed here with plain pandas."""
    df = paper_table2()
    wide = df.pivot_table(
        index=["dataset", "sampling_rate_percent"], columns="method", values="top1_mean"
    )
    lost = wide.rsub(wide.max(axis=1), axis=0)
    r = retrospective()
    pol = r.policies.set_index("policy")
    for method in wide.columns:
        assert pol.loc[f"always {method}", "regret"] == pytest.approx(lost[method].mean())
        assert pol.loc[f"always {method}", "max_regret"] == pytest.approx(lost[method].max())
    assert len(r.cells) == 20
    assert pol.loc["always L2-SP+BSS", "regret"] == pytest.approx(0.979)
    assert pol.loc["always DELTA+BSS", "regret"] == pytest.approx(0.341)
    assert pol.loc["always DELTA+BSS", "wins"] == 7
    assert r.best_policy == "always DELTA+BSS"


def test_files(tmp_path):
    r = retrospective()
    r.to_json(tmp_path / "r.json")
    names = sorted(p.name for p in r.to_csv(tmp_path))
    assert names == ["cells.csv", "lodo.csv", "pairs.csv", "policies.csv", "regrets.csv"]
    back = pd.read_csv(tmp_path / "policies.csv")
    assert {"policy", "regret", "max_regret", "share_within"} <= set(back.columns)


def test_leave_one_dataset_out_by_hand():
    # three datasets, one cell each; "always L2+BSS" is best overall, but left out of its own
    # best dataset the choice flips
    table = pd.DataFrame(
        {
            "dataset": ["a", "a", "b", "b", "c", "c"],
            "method": ["L2", "L2+BSS"] * 3,
            "sampling_rate_percent": [15] * 6,
            "top1_mean": [70.0, 73.0, 60.0, 59.0, 50.0, 50.5],
        }
    )
    r = retrospective(table)
    # regrets: L2 = (3, 0, 0.5), L2+BSS = (0, 1, 0)
    lodo = r.lodo.set_index("dataset")
    assert lodo.loc["a", "chosen"] == "always L2"  # on b, c: L2 0.25, L2+BSS 0.5
    assert lodo.loc["a", "regret"] == pytest.approx(3.0)
    assert lodo.loc["b", "chosen"] == "always L2+BSS"  # on a, c: L2 1.75, L2+BSS 0
    assert lodo.loc["b", "regret"] == pytest.approx(1.0)
    assert lodo.loc["c", "chosen"] == "always L2+BSS"  # on a, b: L2 1.5, L2+BSS 0.5
    assert lodo.loc["c", "regret"] == pytest.approx(0.0)
    assert r.lodo_regret == pytest.approx(4.0 / 3)
    pair = r.pairs.set_index("b").loc["L2"]
    assert (pair["a"], pair["wins"], pair["losses"]) == ("L2+BSS", 2, 1)
    assert pair["mean"] == pytest.approx((3.0 - 1.0 + 0.5) / 3)


def test_the_issue_numbers_on_table2():
    """Leave-one-dataset-out regret and the paired DELTA+BSS vs L2+BSS comparison."""
    r = retrospective()
    assert r.lodo_regret == pytest.approx(0.6095)
    assert r.lodo.set_index("dataset").loc["fgvc_aircraft", "chosen"] == "always L2+BSS"
    pair = r.pairs.set_index("b").loc["L2+BSS"]
    assert (pair["wins"], pair["losses"]) == (9, 11)
    assert pair["p_t"] == pytest.approx(0.339, abs=1e-3)
    assert pair["ci_low"] < 0 < pair["ci_high"]
    assert set(r.to_dict()) >= {"lodo", "pairs", "lodo_regret"}
