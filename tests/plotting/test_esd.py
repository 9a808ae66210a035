"""ESD figures from results."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spectral_probe.analysis import compare_weights, esd_layers
from spectral_probe.plotting import default_esd_layers, plot_alpha_profile, plot_esd_fits


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(60, 50), nn.Linear(50, 40), nn.Linear(40, 30))


def test_alpha_profile_and_fits_of_one_model_and_a_pair():
    res = esd_layers(_model(0), workers=1)
    fig = plot_alpha_profile(res)
    assert len(fig.axes[0].lines) == 1
    assert len(plot_esd_fits(res, ["0", "2"]).axes) == 2
    assert default_esd_layers(res)
    pair = compare_weights(_model(0), _model(1), esd=True, workers=1)
    assert len(plot_alpha_profile(pair).axes[0].lines) == 2
    assert plot_esd_fits(pair).axes


def test_plots_reject_results_without_esd():
    with pytest.raises(ValueError, match="ESD result"):
        plot_alpha_profile(compare_weights(_model(0), _model(1), workers=1))


def test_fits_draw_on_given_axes_one_per_layer():
    from matplotlib.figure import Figure

    from spectral_probe.errors import ConfigError

    res = esd_layers(_model(0), workers=1)
    fig = Figure()
    axes = fig.subplots(1, 3)
    assert plot_esd_fits(res, ["0", "2"], ax=axes[1:]) is fig
    assert not axes[0].lines and axes[1].get_title() == "0" and axes[2].get_title() == "2"
    with pytest.raises(ConfigError, match="expected 2 axes .*found 3"):
        plot_esd_fits(res, ["0", "2"], ax=axes)
