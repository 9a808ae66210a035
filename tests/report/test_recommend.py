"""The recommendation rule, case by case."""

from __future__ import annotations

import math

import pytest

from spectral_probe.report.recommend import PilotScore, SpectralEvidence, recommend, score_pilots


def test_standard_error_combines_seed_spread_and_validation_noise():
    s = PilotScore("l2", (0.8, 0.82, 0.78), n_val=500)
    assert s.mean == pytest.approx(0.8)
    assert s.std == pytest.approx(0.02)
    assert s.se == pytest.approx(math.sqrt(0.02**2 / 3 + 0.8 * 0.2 / 500 / 3))
    assert PilotScore("l2", (0.5,), n_val=100).se == pytest.approx(0.05)


def test_clear_winner_is_high_confidence():
    scores = score_pilots({"l2": [0.70, 0.71], "l2+bss": [0.80, 0.81], "l2-sp": [0.72, 0.70]}, n_val=2000)
    rec = recommend(scores)
    assert rec.method == "l2+bss" and rec.confidence == "high" and rec.z > 2
    assert rec.ranking["method"].tolist()[0] == "l2+bss"
    assert rec.ranking["tied"].tolist() == [True, False, False]


def test_medium_confidence_band():
    scores = score_pilots({"l2": [0.800], "l2+bss": [0.815]}, n_val=4000)  # se ~ 0.0063 each
    rec = recommend(scores)
    assert 1 <= rec.z < 2 and rec.confidence == "medium" and rec.method == "l2+bss"


def test_tie_prefers_bss_when_the_tail_is_heavy():
    scores = score_pilots({"l2": [0.801], "l2+bss": [0.800], "l2-sp": [0.60]}, n_val=1000)
    rec = recommend(scores, SpectralEvidence(tail_energy=0.2))
    assert rec.method == "l2+bss" and rec.confidence == "low"
    assert any("smaller half" in r for r in rec.reasons)


def test_tie_drops_bss_when_the_tail_is_light():
    scores = score_pilots({"l2": [0.800], "l2+bss": [0.801]}, n_val=1000)
    rec = recommend(scores, SpectralEvidence(tail_energy=0.01))
    assert rec.method == "l2" and rec.confidence == "low"


def test_tie_between_l2_and_l2sp_follows_top_layer_rotation():
    scores = score_pilots({"l2": [0.800], "l2-sp": [0.801]}, n_val=1000)
    assert recommend(scores, SpectralEvidence(top_alignment=0.5)).method == "l2"
    assert recommend(scores, SpectralEvidence(top_alignment=0.99)).method == "l2-sp"


def test_tie_without_evidence_prefers_the_simplest():
    scores = score_pilots({"l2-sp+bss": [0.802], "l2": [0.800]}, n_val=1000)
    rec = recommend(scores)
    assert rec.method == "l2" and rec.confidence == "low"


def test_single_method_and_bad_input():
    rec = recommend(score_pilots({"l2": [0.5, 0.6]}, n_val=10))
    assert rec.method == "l2" and rec.confidence == "low"
    with pytest.raises(ValueError, match="at least one pilot"):
        score_pilots({}, n_val=10)
    with pytest.raises(ValueError, match="finite validation accuracies"):
        score_pilots({"l2": [float("nan")]}, n_val=10)
