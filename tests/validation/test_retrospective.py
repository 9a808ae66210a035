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
    assert names == ["cells.csv", "policies.csv", "regrets.csv"]
    back = pd.read_csv(tmp_path / "policies.csv")
    assert {"policy", "regret", "max_regret", "share_within"} <= set(back.columns)
