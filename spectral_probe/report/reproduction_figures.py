"""The reproduction page's figures, drawn from the per-run numbers of
:class:`~spectral_probe.report.reproduction_data.ReproductionData` alone (so a committed data
file redraws them without run directories). Each function takes the tables, an optional
``ax`` and returns the figure; matplotlib is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_layer_angles", "plot_rate_spectra", "plot_bss_spectra", "plot_error_sweep"]


def plot_layer_angles(layers: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Figure 1(b): per layer (in depth order) the mean |cos| of the leading 10% and of the rest."""
    from ..plotting import new_axes

    fig, ax = new_axes(ax, (7.5, 3.8))
    t = layers.groupby(["depth", "layer", "group"], sort=True)[["top_index", "rest_index"]].mean()
    t = t.reset_index()
    ax.plot(t["depth"], t["top_index"], "o-", ms=3, label="leading 10% of indices")
    ax.plot(t["depth"], t["rest_index"], "s-", ms=3, label="the other indices")
    for group, colour in (("lower", "tab:green"), ("higher", "tab:red")):
        d = t.loc[t["group"] == group, "depth"]
        if len(d):
            ax.axvspan(
                d.min() - 0.5, d.max() + 0.5, color=colour, alpha=0.12, label=f"{group} layers"
            )
    ax.set_xlabel("layer (depth order)")
    ax.set_ylabel("mean |cos| with the pre-trained vector")
    ax.legend(fontsize=8)
    return fig


def _mean_curves(runs: pd.DataFrame, spectrum: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    s = spectrum.merge(runs[["run_id", *by]], on="run_id")
    return s.groupby([*by, "index"], sort=True)["sigma_norm"].mean().reset_index()


def plot_rate_spectra(
    runs: pd.DataFrame, spectrum: pd.DataFrame, *, half: bool = False, ax: Axes | None = None
) -> Figure:
    """Figures 1(c, d): the L2 runs' mean sigma_i / sigma_1 by rate (``half``: the smaller half)."""
    from ..plotting import new_axes, small_half_start

    fig, ax = new_axes(ax)
    curves = _mean_curves(runs, spectrum, ["rate_percent", "rate"])
    for (_, rate), g in curves.groupby(["rate_percent", "rate"], sort=True):
        c = g[g["index"] >= small_half_start(int(g["index"].max()))] if half else g
        ax.plot(c["index"], c["sigma_norm"], "o-", ms=3, label=f"L2 @ {rate}")
    ax.set_yscale("log")
    ax.set_xlabel("index i")
    ax.set_ylabel("sigma_i / sigma_1 (mean over batches and seeds)")
    ax.legend(fontsize=8)
    return fig


def plot_bss_spectra(runs: pd.DataFrame, spectrum: pd.DataFrame, ax: Axes | None = None) -> Figure:
    """Figures 3(b, c): mean sigma_i / sigma_1 with and without BSS, per rate."""
    from ..plotting import new_axes

    fig, ax = new_axes(ax)
    curves = _mean_curves(runs, spectrum, ["rate_percent", "rate", "method"])
    for (_, rate, method), c in curves.groupby(["rate_percent", "rate", "method"], sort=True):
        style = "--" if method == "l2" else "-"
        ax.plot(c["index"], c["sigma_norm"], style, marker="o", ms=3, label=f"{method} @ {rate}")
    ax.set_yscale("log")
    ax.set_xlabel("index i")
    ax.set_ylabel("sigma_i / sigma_1 (mean over batches and seeds)")
    ax.legend(fontsize=8)
    return fig


def plot_error_sweep(table: pd.DataFrame, x: str, ax: Axes | None = None) -> Figure:
    """Figures 3(a, d): test error (mean and sd over seeds) against ``x`` (``r`` or ``k``), per rate."""
    from ..plotting import new_axes

    fig, ax = new_axes(ax, (5.5, 3.8))
    for (_, rate), g in table.groupby(["rate_percent", "rate"], sort=True):
        c = g.sort_values(x)
        ax.errorbar(c[x], c["mean"], yerr=c["std"].fillna(0), marker="o", capsize=3, label=rate)
    ax.set_xlabel(x)
    ax.set_ylabel("test error (%), mean and sd over seeds")
    ax.legend(title="rate", fontsize=8)
    return fig
