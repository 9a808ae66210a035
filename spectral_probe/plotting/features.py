"""Figures of a :class:`~spectral_probe.analysis.FeatureSpectra` (paper Figure 1c/1d, 3b/3c).

One curve per model: the mean over batches of the i-th singular value, with its confidence
band (the result's ``ci_low``/``ci_high``). A result holding several layers gets one panel
per layer (or name one with ``layer=``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ._base import new_axes, new_figure, palette, panel_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..analysis import FeatureSpectra

__all__ = [
    "plot_batch_spectra",
    "plot_dataset_spectrum",
    "plot_feature_overview",
    "small_half_start",
]


def small_half_start(k: int) -> int:
    """First 1-based index of the smaller half of ``k`` singular values (the ``k // 2`` smallest).

    ``b = 48`` gives 25: the paper's Figure 1(d) shows indices 25 to 48.
    """
    return k - k // 2 + 1


def _layers(result: FeatureSpectra, layer: str | Sequence[str] | None) -> list[str]:
    if layer is None:
        return result.layers
    names = [layer] if isinstance(layer, str) else list(layer)
    unknown = [n for n in names if n not in result.layers]
    if unknown:
        raise ValueError(
            f"expected a layer in {result.layers}, found {', '.join(map(repr, unknown))}"
        )
    return names


def _panels(
    result: FeatureSpectra,
    layer: str | Sequence[str] | None,
    ax: Axes | None,
    size: tuple[float, float],
) -> tuple[Figure, Iterator[tuple[Axes, str]]]:
    layers = _layers(result, layer)
    if ax is not None:
        if len(layers) != 1:
            raise ValueError(
                f"expected one layer when drawing on given axes, found {len(layers)}: pass layer="
            )
        return ax.figure, iter([(ax, layers[0])])  # type: ignore[return-value]
    if len(layers) == 1:
        fig, ax = new_axes(None, size)
        return fig, iter([(ax, layers[0])])
    ncols = min(3, len(layers))
    nrows = math.ceil(len(layers) / ncols)
    fig = new_figure((size[0] * 0.75 * ncols, size[1] * 0.8 * nrows))
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for extra in axes[len(layers) :]:
        extra.set_visible(False)
    return fig, zip(axes, layers)


def plot_batch_spectra(
    result: FeatureSpectra,
    *,
    half: bool = False,
    normalise: bool = False,
    layer: str | Sequence[str] | None = None,
    band: bool = True,
    log: bool | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Singular values of the batch feature matrices against their index, one curve per model.

    ``half=False`` is the paper's Figure 1(c)/3(b) (all ``b`` values), ``half=True`` its
    Figure 1(d)/3(c) (the smaller half). ``normalise=True`` plots :math:`\\sigma_i / \\sigma_1`
    (log scale by default) so models with differently scaled features compare.

    Args:
        result: from :func:`~spectral_probe.analysis.feature_spectrum`.
        half: only the smaller half of the indices.
        normalise: :math:`\\sigma_i / \\sigma_1` (per batch, then aggregated).
        layer: the layer(s) to draw (default: all, one panel each).
        band: shade the confidence band of the mean.
        log: log-scale y axis (default: only when normalised).
        ax: axes to draw on (one layer only).
    """
    quantity = "sigma_norm" if normalise else "sigma"
    log = normalise if log is None else log
    fig, panels = _panels(result, layer, ax, (6.4, 4.2))
    models = result.models
    colors = palette(len(models))
    level = result.meta.get("ci", 0.95)
    for axis, name in panels:
        for model, color in zip(models, colors):
            try:
                rows = result.curve(model, name, quantity)
            except KeyError:
                continue
            if half:
                rows = rows[rows["index"] >= small_half_start(len(rows))]
            axis.plot(rows["index"], rows["mean"], color=color, lw=1.5, label=model)
            if band and rows["n"].iloc[0] > 1:
                axis.fill_between(
                    rows["index"], rows["ci_low"], rows["ci_high"], color=color, alpha=0.2, lw=0
                )
        if log:
            axis.set_yscale("log")
        axis.set_xlabel("index i")
        ylabel = r"$\sigma_i / \sigma_1$" if normalise else r"singular value $\sigma_i$"
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
        what = "smaller half of the singular values" if half else "singular values"
        b = int(result.summary.loc[result.summary["layer"] == name, "batch_size"].iloc[0])
        title = f"{what} of {b}-row feature matrices"
        if len(result.layers) > 1:
            title = f"{name}: {title}"
        axis.set_title(title, fontsize=9)
        axis.legend(
            fontsize=7,
            title=f"mean, {level:.0%} CI over batches" if band else None,
            title_fontsize=7,
        )
    return fig


def plot_dataset_spectrum(
    result: FeatureSpectra,
    *,
    quantity: str = "sigma_norm",
    layer: str | Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """The dataset-level spectrum (all N samples), one curve per model, log-log.

    Args:
        result: from :func:`~spectral_probe.analysis.feature_spectrum` with the dataset spectrum.
        quantity: ``sigma_norm`` (:math:`\\sigma_i / \\sigma_1`, default), ``sigma``,
            ``eigenvalue`` or ``cum_energy`` (cumulative energy, linear y).
        layer: the layer(s) to draw (default: all, one panel each).
        ax: axes to draw on (one layer only).
    """
    if quantity not in ("sigma_norm", "sigma", "eigenvalue", "energy", "cum_energy"):
        raise ValueError(
            f"expected quantity sigma_norm, sigma, eigenvalue, energy or cum_energy, found {quantity!r}"
        )
    if result.dataset.empty:
        raise ValueError(
            "expected a result with the dataset-level spectrum, found none (dataset_spectrum=False)"
        )
    fig, panels = _panels(result, layer, ax, (6.4, 4.2))
    models = result.models
    colors = palette(len(models))
    centred = "centred " if result.meta.get("center") else ""
    labels = {
        "sigma_norm": r"$\sigma_i / \sigma_1$",
        "sigma": r"$\sigma_i$",
        "eigenvalue": r"eigenvalue $\lambda_i$",
        "energy": r"$\sigma_i^2 / \sum_j \sigma_j^2$",
        "cum_energy": "cumulative energy",
    }
    for axis, name in panels:
        for model, color in zip(models, colors):
            rows = result.dataset[
                (result.dataset["model"] == model) & (result.dataset["layer"] == name)
            ]
            if rows.empty:
                continue
            n = int(
                result.summary.loc[
                    (result.summary["model"] == model) & (result.summary["layer"] == name),
                    "dataset_n",
                ].iloc[0]
            )
            axis.plot(rows["index"], rows[quantity], color=color, lw=1.5, label=f"{model} (N={n})")
        axis.set_xscale("log")
        if quantity != "cum_energy":
            axis.set_yscale("log")
        axis.set_xlabel("index i")
        axis.set_ylabel(labels[quantity])
        axis.grid(alpha=0.3, which="both")
        title = f"dataset-level spectrum of the {centred}N x d feature matrix"
        if len(result.layers) > 1:
            title = f"{name}: {title}"
        axis.set_title(title, fontsize=9)
        axis.legend(fontsize=7)
    return fig


def plot_feature_overview(
    result: FeatureSpectra, *, layer: str | None = None, ax: Axes | Sequence[Axes] | None = None
) -> Figure:
    """Four panels for one layer: all singular values, the smaller half, :math:`\\sigma_i/\\sigma_1`,
    and the dataset-level spectrum (when the result has it).

    ``ax``: four Axes to draw on (default: a new 2 x 2 figure).
    """
    name = layer if layer is not None else result.layers[0]
    _layers(result, name)
    fig, axes, own = panel_axes(ax, 4, ncols=2, panel=(5.5, 3.8))
    plot_batch_spectra(result, layer=name, ax=axes[0])
    plot_batch_spectra(result, layer=name, half=True, ax=axes[1])
    plot_batch_spectra(result, layer=name, normalise=True, ax=axes[2])
    if result.dataset.empty:
        axes[3].set_visible(False)
    else:
        plot_dataset_spectrum(result, layer=name, ax=axes[3])
    for axis in axes:
        axis.title.set_fontsize(8)
    if own:
        fig.suptitle(f"feature spectra at {name}", fontsize=10)
    return fig
