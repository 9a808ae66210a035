"""The statistics of the rule as the rendered report shows them (HTML, Markdown, JSON)."""

from __future__ import annotations

import json
import math

import pytest

from spectral_probe.report.recommend import detection_power, difference_floor
from spectral_probe.report.render import caveats


def test_json_carries_intervals_consistent_with_the_verdict_and_the_power(tiny_report):
    report, paths, _ = tiny_report
    payload = json.loads(paths["json"].read_text())
    k = len(report.settings.methods)
    for rate, rec in payload["recommendations"].items():
        assert rec["comparison_level"] == report.settings.alpha / (k - 1)
        assert set(rec["power"]) == {"1", "2"} and rec["n_seeds"] == len(report.settings.seeds)
        best = rec["ranking"][0]
        floor = difference_floor(
            best["mean"], best["mean"], int(report.pilots.table["n_val"].min()), 0.01
        )
        assert rec["power_sd"] == pytest.approx(floor)
        assert rec["power"]["2"] == pytest.approx(
            detection_power(0.02, rec["n_seeds"], k, sd=floor)
        )
        for row in rec["ranking"][1:]:
            assert row["diff_low"] <= row["diff"] <= row["diff_high"]
            assert row["tied"] == (not row["diff_low"] > 0)
            assert math.isfinite(row["se_diff"]) and row["se_diff"] > 0
        detected = all(not row["tied"] for row in rec["ranking"][1:])
        assert (rec["outcome"] == "best") == detected, rate


def test_markdown_and_html_show_interval_power_and_p_adj(tiny_report):
    report, paths, _ = tiny_report
    md, html = paths["markdown"].read_text(), paths["html"].read_text()
    rec = report.headline
    assert rec.power_text() and rec.power_text() in md
    assert 'id="power"' in html and "the pilots detect a true lead" in html
    for text in (md, html):
        assert "each end at α/(k − 1)" in text and "p_adj" in text and "detectably worse" in text
        assert "Bayesian-bootstrap" not in text
    row = rec.ranking.iloc[1]
    shown = f"[{100 * row['diff_low']:+.2f}, {100 * row['diff_high']:+.2f}]"
    assert shown in md and shown in html
    if rec.outcome != "best":  # "no detectable difference" quotes the interval
        assert any("No detectable difference between" in r and " in [" in r for r in rec.reasons)
        assert rec.confidence == "low"


def test_underpowered_pilots_are_said_so(tiny_report):
    report, _, _ = tiny_report
    said = [c for c in caveats(report) if c.startswith("The pilots are underpowered")]
    assert bool(said) == (report.headline.power["2"] < 0.8)
