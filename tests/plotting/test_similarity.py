"""Similarity figures: heatmap and by-depth lines, drawn from a result without recomputing."""

from __future__ import annotations

import pandas as pd
import pytest

from spectral_probe.analysis import FeatureSimilarity
from spectral_probe.plotting import new_axes, plot_similarity_by_depth, plot_similarity_heatmap


def _result() -> FeatureSimilarity:
    layers = ["blocks.0", "blocks.1", "penultimate"]
    rows = [
        {
            "metric": m,
            "layer_a": a,
            "layer_b": b,
            "depth_a": i,
            "depth_b": j,
            "value": (1.0 - 0.1 * abs(i - j)) if m == "cka" else 0.1 * (1 + abs(i - j)),
            "n": 100,
            "matched": i == j,
        }
        for m in ("cka", "procrustes")
        for i, a in enumerate(layers)
        for j, b in enumerate(layers)
    ]
    pairs = pd.DataFrame(rows)
    matched = pd.DataFrame(
        {
            "depth": [0, 1, 2],
            "layer_a": layers,
            "layer_b": layers,
            "d_a": [16, 24, 1280],
            "d_b": [16, 24, 1280],
            "cka": [1.0, 0.9, 0.8],
            "procrustes": [0.1, 0.2, 0.3],
        }
    )
    return FeatureSimilarity(
        pairs, matched, pd.DataFrame(), {"model_a": "a", "model_b": "b", "n_samples": 100}
    )


def test_heatmap_draws_the_matrix_on_given_axes():
    res = _result()
    fig, ax = new_axes(None)
    assert plot_similarity_heatmap(res, "cka", ax=ax) is fig
    image = ax.get_images()[0]
    assert image.get_array().tolist() == res.matrix("cka").to_numpy().tolist()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["blocks.0", "blocks.1", "penultimate"]
    assert len(ax.texts) == 9
    with pytest.raises(Exception, match="metric"):
        plot_similarity_heatmap(res, "svcca")


def test_by_depth_puts_distances_on_a_second_axis():
    res = _result()
    fig = plot_similarity_by_depth(res)
    main, twin = fig.axes
    assert main.lines[0].get_ydata().tolist() == [1.0, 0.9, 0.8]
    assert twin.lines[0].get_ydata().tolist() == [0.1, 0.2, 0.3]
    assert len(plot_similarity_by_depth(res, ["cka"]).axes) == 1
    with pytest.raises(ValueError, match="metrics"):
        plot_similarity_by_depth(res, ["pwcca"])
