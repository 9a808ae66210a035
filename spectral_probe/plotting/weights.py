"""Figures of a :class:`~spectral_probe.analysis.WeightComparison` (paper Figure 1b and more)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ._base import new_axes, panel_axes

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..analysis import WeightComparison

__all__ = [
    "block_of",
    "default_plot_layers",
    "plot_corresponding_angles",
    "plot_angle_heatmap",
    "plot_weight_spectra",
]

_NUM = re.compile(r"^\d+$")


def block_of(layer: str) -> str:
    """The block a layer belongs to: its name up to the first run of numeric components.

    ``layer4.2.conv1`` -> ``layer4.2``; ``blocks.6.0.conv_pwl`` -> ``blocks.6.0``;
    ``encoder.layer.5.attention.self.query`` -> ``encoder.layer.5``; ``conv1`` -> ``conv1``.
    """
    parts = layer.split(":", maxsplit=1)[0].split(".")
    for i, part in enumerate(parts):
        if _NUM.match(part):
            j = i
            while j + 1 < len(parts) and _NUM.match(parts[j + 1]):
                j += 1
            return ".".join(parts[: j + 1])
    return layer


def default_plot_layers(layers: Sequence[str], kinds: Sequence[str] | None = None) -> list[str]:
    """The paper's Figure 1(b) choice, generalised: first conv, first block, last block.

    ResNet-50 gives ``conv1``, ``layer1.0.conv1..3`` (and its downsample) and
    ``layer4.2.conv1..3``. Falls back to the first and last layers.
    """
    layers = list(layers)
    if not layers:
        return []
    chosen: list[str] = []
    if kinds is not None:
        first_conv = next((n for n, k in zip(layers, kinds) if k == "conv"), None)
        if first_conv is not None and block_of(first_conv) == first_conv:
            chosen.append(first_conv)
    blocks: dict[str, list[str]] = {}
    for name in layers:
        b = block_of(name)
        if b != name:
            blocks.setdefault(b, []).append(name)
    if blocks:
        names = list(blocks)
        chosen += blocks[names[0]]
        if len(names) > 1:
            chosen += blocks[names[-1]]
    if not chosen:
        chosen = [layers[0], layers[-1]] if len(layers) > 1 else layers[:1]
    return list(dict.fromkeys(chosen))


def _layer_rows(result: WeightComparison, name: str) -> pd.DataFrame:
    """The angle rows of one layer (:meth:`WeightComparison.layer` through attributes only,
    so that a result's fields serve as well: see :func:`~spectral_probe.plotting.result_fields`)."""
    angles = result.angles
    rows = angles[angles["layer"] == name]
    if rows.empty:
        raise KeyError(f"no compared layer named {name!r}")
    return rows


def plot_corresponding_angles(
    result: WeightComparison,
    layers: Sequence[str] | None = None,
    *,
    window: bool = False,
    ax: Axes | None = None,
) -> Figure:
    """:math:`|\\cos\\theta_i|` against index ``i`` for chosen layers (paper Figure 1b).

    Lower layers are drawn in blues, higher ones in reds. Indices whose Wedin bound is 1
    (not resolvable index by index) are drawn as faint markers; with ``window=True`` the
    spectral-window alignment is overlaid as dashed lines.
    """
    layers = (
        list(layers)
        if layers is not None
        else default_plot_layers(result.layers["layer"], result.layers["kind"])
    )
    fig, ax = new_axes(ax, (7.0, 4.4))
    from matplotlib import colormaps

    n = len(layers)
    cmap = colormaps["coolwarm"]
    for i, name in enumerate(layers):
        rows = _layer_rows(result, name)
        color = cmap(i / max(n - 1, 1))
        idx = rows["index"].to_numpy()
        ax.plot(idx, rows["cos"], color=color, lw=1.3, label=name)
        weak = ~rows["resolvable"].to_numpy(dtype=bool)
        if weak.any():
            ax.plot(idx[weak], rows["cos"].to_numpy()[weak], ".", color=color, alpha=0.25, ms=3)
        if window:
            ax.plot(idx, rows["cos_window"], "--", color=color, lw=1.0, alpha=0.8)
    ax.set_xlabel("index i (singular values in descending order)")
    ax.set_ylabel(r"$|\cos\theta_i|$ of corresponding angles")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2 if n > 6 else 1, loc="lower left")
    title = "Corresponding angles"
    if window:
        title += " (dashed: spectral-window alignment)"
    ax.set_title(title)
    return fig


def plot_angle_heatmap(
    result: WeightComparison,
    *,
    value: str = "cos",
    bins: int = 50,
    ax: Axes | None = None,
) -> Figure:
    """Network-wide heatmap: layers (rows, in network order) by normalised index ``i / r``.

    Each cell is the mean of ``value`` (``cos`` or ``cos_window``) over the indices that fall
    in that bin of the layer's own rank, so layers of different widths line up.
    """
    if value not in ("cos", "cos_window"):
        raise ValueError(f"expected value 'cos' or 'cos_window', found {value!r}")
    analysed = set(result.angles["layer"])  # once, not once per layer
    names = [n for n in result.layers["layer"] if n in analysed]
    grid = np.full((len(names), bins), np.nan)
    centres = (np.arange(bins) + 0.5) / bins
    for name, rows in result.angles.groupby("layer", sort=False):
        vals = rows[value].to_numpy(dtype=float)
        r = len(vals)
        if r >= bins:  # average the indices falling in each bin
            pos = np.minimum((np.arange(r) * bins) // r, bins - 1)
            sums = np.bincount(pos, weights=np.nan_to_num(vals), minlength=bins)
            counts = np.bincount(pos, weights=~np.isnan(vals), minlength=bins)
            with np.errstate(invalid="ignore", divide="ignore"):
                row = np.where(counts > 0, sums / counts, np.nan)
        else:  # fewer indices than bins: each bin shows the index it falls on
            row = vals[np.minimum((centres * r).astype(int), r - 1)]
        grid[names.index(name)] = row
    height = min(max(3.0, 0.16 * len(names) + 1.2), 18.0)
    fig, ax = new_axes(ax, (7.0, height))
    im = ax.imshow(
        grid,
        aspect="auto",
        cmap="viridis",
        vmin=0,
        vmax=1,
        interpolation="nearest",
        extent=(0, 1, len(names), 0),
    )
    step = max(1, math.ceil(len(names) / 40))
    ax.set_yticks(np.arange(0, len(names), step) + 0.5, names[::step], fontsize=6)
    ax.set_xlabel("normalised index i / rank")
    ax.set_title(
        "|cos| of corresponding angles across the network"
        if value == "cos"
        else "spectral-window alignment across the network"
    )
    fig.colorbar(im, ax=ax, label=value)
    return fig


def plot_weight_spectra(
    result: WeightComparison,
    layers: Sequence[str] | None = None,
    *,
    ncols: int = 4,
    normalise: bool = False,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Singular values of both models, one small panel per layer (log scale).

    ``ax``: one Axes per layer to draw on (default: a new figure of ``ncols`` columns).
    """
    layers = (
        list(layers)
        if layers is not None
        else default_plot_layers(result.layers["layer"], result.layers["kind"])
    )
    fig, axes, own = panel_axes(ax, max(len(layers), 1), ncols=ncols, panel=(3.0, 2.4))
    a_label = str(result.meta.get("model_a", "A"))
    b_label = str(result.meta.get("model_b", "B"))
    for ax, name in zip(axes, layers):
        rows = _layer_rows(result, name)
        sa, sb = rows["sigma_a"].to_numpy(), rows["sigma_b"].to_numpy()
        if normalise:
            sa, sb = sa / sa[0], sb / sb[0]
        ax.plot(rows["index"], sa, lw=1.2, label="A: " + a_label)
        ax.plot(rows["index"], sb, lw=1.2, ls="--", label="B: " + b_label)
        ax.set_yscale("log")
        ax.set_title(name, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    if own:
        fig.supxlabel("index i", fontsize=8)
        fig.supylabel("singular value" + (r" / $\sigma_1$" if normalise else ""), fontsize=8)
    return fig
