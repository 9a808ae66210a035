"""The |cos| similarity matrix of one layer: against NumPy, the layer picked, the figure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from spectral_probe.analysis import compare_weights
from spectral_probe.analysis.layer_similarity import (
    layer_similarity,
    pick_similarity_layer,
    similarity_for,
)
from spectral_probe.errors import ConfigError


class _Two(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(8, 8, bias=False)
        self.second = nn.Linear(8, 12, bias=False)


def _pair(seed: int = 0) -> tuple[_Two, _Two]:
    """B's ``second`` gets a strong rank-1 update along a direction no vector of A holds
    (|cos| 0.29 with each of A's basis vectors): one intruder; ``first`` a small change."""
    gen = torch.Generator().manual_seed(seed)
    a, b = _Two(), _Two()
    with torch.no_grad():
        a.first.weight.copy_(torch.randn(8, 8, generator=gen))
        q, _ = torch.linalg.qr(torch.randn(12, 12, generator=gen))
        a.second.weight.copy_(q[:, :8] @ torch.diag(torch.linspace(5, 1, 8)))
        b.load_state_dict(a.state_dict())
        b.first.weight.add_(0.01 * torch.randn(8, 8, generator=gen))
        x = q @ (torch.ones(12) / 12**0.5)  # equal weight on all 12 of A's left directions
        y = torch.randn(8, generator=gen)
        b.second.weight.add_(20 * torch.outer(x, y / y.norm()))
    return a, b


def test_matrix_equals_numpy_and_finds_the_intruder() -> None:
    a, b = _pair()
    sim = layer_similarity(a, b, layer="second", k=4, epsilon=0.5)
    w0 = a.second.weight.detach().double().numpy()
    w = b.second.weight.detach().double().numpy()
    u0 = np.linalg.svd(w0, full_matrices=False)[0]
    u = np.linalg.svd(w, full_matrices=False)[0]
    expected = np.abs(u[:, :4].T @ u0)
    got = sim.frame.pivot(index="tuned", columns="base", values="abs_cos").to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert sim.shape == (12, 8) and sim.k == 4
    assert sim.intruders == [int(i) for i in np.flatnonzero(expected.max(axis=1) < 0.5)]
    assert sim.intruders == [0]


def test_the_layer_with_most_intruders_is_picked() -> None:
    a, b = _pair()
    result = compare_weights(a, b)
    assert pick_similarity_layer(result.layers) == "second"
    sim = similarity_for(result, a, b)
    assert sim is not None and sim.layer == "second" and sim.k == 8
    assert similarity_for(result, a, b, "first").layer == "first"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="found 'third'"):
        pick_similarity_layer(result.layers, "third")
    layers = pd.DataFrame(
        {
            "layer": ["x", "y"],
            "status": ["ok", "ok"],
            "intruders": [0, 0],
            "w_rel_change": [0.1, 0.3],
        }
    )
    assert pick_similarity_layer(layers) == "y"  # no intruders: the larger change
    none = compare_weights(a, b, intruder_k=0)
    assert similarity_for(none, a, b) is None


def test_figure_draws_on_given_axes_and_marks_intruders() -> None:
    from matplotlib.figure import Figure

    from spectral_probe.plotting import plot_similarity_matrix

    a, b = _pair()
    sim = layer_similarity(a, b, layer="second", k=4)
    fig = plot_similarity_matrix(sim)
    labels = fig.axes[0].get_yticklabels()
    assert labels[0].get_text() == "1 (intruder)"
    assert labels[0].get_color() == "tab:red" and labels[1].get_color() != "tab:red"
    assert fig.axes[0].images[0].get_array().shape == (4, 8)
    own = Figure()
    ax = own.add_subplot()
    assert plot_similarity_matrix(sim, columns=3, ax=ax) is own
    assert ax.images[0].get_array().shape == (4, 3)
