"""plotting.features: curves, bands, halves, panels, and errors (results built from tensors)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.analysis import spectra_from_features
from spectral_probe.plotting import (
    plot_batch_spectra,
    plot_dataset_spectrum,
    plot_feature_overview,
    save_figure,
    small_half_start,
)


def _result(layers: int = 1, dataset: bool = True):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(0)
    feats = {
        name: [torch.randn(8, 12, generator=gen) * s for _ in range(5)]
        for name, s in (("a", 1.0), ("b", 2.0))
    }
    res = spectra_from_features(feats, layer="L0", dataset_spectrum=dataset)
    if layers == 1:
        return res
    import pandas as pd

    other = spectra_from_features(feats, layer="L1", dataset_spectrum=dataset)
    from dataclasses import replace

    return replace(
        res,
        **{
            f: pd.concat([getattr(res, f), getattr(other, f)], ignore_index=True)
            for f in ("summary", "spectrum", "batches", "dataset")
        },
    )


def test_small_half_start():
    assert small_half_start(48) == 25 and small_half_start(5) == 4 and small_half_start(2) == 2


def test_batch_spectra_one_curve_and_band_per_model():
    res = _result()
    fig = plot_batch_spectra(res)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["a", "b"]
    np.testing.assert_allclose(ax.lines[1].get_ydata(), res.curve("b")["mean"])
    assert len(ax.collections) == 2  # the CI bands
    assert ax.get_yscale() == "linear"
    half = plot_batch_spectra(res, half=True).axes[0]
    assert list(half.lines[0].get_xdata()) == [5, 6, 7, 8]
    norm = plot_batch_spectra(res, normalise=True, band=False).axes[0]
    assert norm.get_yscale() == "log" and not norm.collections
    assert norm.lines[0].get_ydata()[0] == pytest.approx(1.0)


def test_panels_per_layer_and_given_axes():
    res = _result(layers=2)
    fig = plot_batch_spectra(res)
    assert [a.get_title().split(":")[0] for a in fig.axes if a.get_visible()] == ["L0", "L1"]
    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert plot_batch_spectra(res, layer="L1", ax=ax) is ax.figure
    with pytest.raises(ValueError, match="one layer"):
        plot_batch_spectra(res, ax=ax)
    with pytest.raises(ValueError, match="expected a layer"):
        plot_batch_spectra(res, layer="nope")


def test_dataset_spectrum_and_overview(tmp_path):
    res = _result()
    ax = plot_dataset_spectrum(res).axes[0]
    assert ax.get_xscale() == "log" and ax.lines[0].get_label() == "a (N=40)"
    np.testing.assert_allclose(
        ax.lines[0].get_ydata(), res.dataset[res.dataset["model"] == "a"]["sigma_norm"]
    )
    cum = plot_dataset_spectrum(res, quantity="cum_energy").axes[0]
    assert cum.get_yscale() == "linear" and cum.lines[0].get_ydata()[-1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="quantity"):
        plot_dataset_spectrum(res, quantity="nope")
    fig = plot_feature_overview(res)
    assert len(fig.axes) == 4
    path = save_figure(fig, tmp_path / "overview.png")
    assert path.stat().st_size > 10_000
    bare = _result(dataset=False)
    with pytest.raises(ValueError, match="dataset-level"):
        plot_dataset_spectrum(bare)
    assert not plot_feature_overview(bare).axes[3].get_visible()


def test_overview_draws_on_four_given_axes():
    from matplotlib.figure import Figure

    from spectral_probe.errors import ConfigError

    res = _result()
    fig = Figure()
    grid = fig.subplots(2, 2)
    assert plot_feature_overview(res, ax=grid) is fig
    assert all(a.lines for a in grid.flat) and fig.get_suptitle() == ""  # the caller's figure
    with pytest.raises(ConfigError, match="expected 4 axes"):
        plot_feature_overview(res, ax=grid[0])
