"""plotting.weights: the per-layer spectra panels, on a new figure or on given axes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spectral_probe.analysis import compare_weights
from spectral_probe.errors import ConfigError
from spectral_probe.plotting import plot_weight_spectra


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 4))


def test_weight_spectra_on_a_new_figure_and_on_given_axes():
    from matplotlib.figure import Figure

    result = compare_weights(_mlp(0), _mlp(1), workers=1)
    layers = list(result.layers["layer"])
    own = plot_weight_spectra(result, layers, ncols=1)
    assert [a.get_title() for a in own.axes] == layers and own.get_supxlabel() == "index i"
    fig = Figure()
    axes = fig.subplots(1, len(layers))
    assert plot_weight_spectra(result, layers, normalise=True, ax=axes) is fig
    first = result.angles[result.angles["layer"] == layers[0]]
    np.testing.assert_allclose(axes[0].lines[0].get_ydata()[0], 1.0)  # sigma_1 / sigma_1
    assert len(axes[0].lines[0].get_ydata()) == len(first)
    with pytest.raises(ConfigError, match=f"expected {len(layers)} axes"):
        plot_weight_spectra(result, layers, ax=axes[:1])
