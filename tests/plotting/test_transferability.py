"""plot_model_ranking draws one cell per model and score, skipped scores named."""

from __future__ import annotations

from spectral_probe.plotting.transferability import plot_model_ranking
from spectral_probe.transferability.rank import build_ranking


def test_one_cell_per_model_and_score_with_skipped_ones_named() -> None:
    rows = {
        "a": [
            {"score": "logme", "value": 1.5, "seconds": 0.1, "skipped": None},
            {"score": "leep", "value": -1.0, "seconds": 0.1, "skipped": None},
        ],
        "b": [
            {"score": "logme", "value": 1.0, "seconds": 0.1, "skipped": None},
            {"score": "leep", "value": float("nan"), "seconds": float("nan"), "skipped": "no head"},
        ],
    }
    details = {
        m: {"feature_dim": 8, "n_samples": 20, "extract_seconds": 0.0, "source_head": m == "a"}
        for m in rows
    }
    result = build_ranking(
        rows,
        details,
        {"scores": ["logme", "leep"], "data": "digits", "split": "train", "n_samples": 20},
    )
    fig = plot_model_ranking(result)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1.5", "-1", "1.00", "1", "skipped", "2.00"]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["logme", "leep", "consensus"]
