"""The figure of ``select-layers``: each weight type's score along the depth, selections marked."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._base import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..analysis.select import LayerSelection

__all__ = ["plot_scores_by_depth"]


def plot_scores_by_depth(result: LayerSelection, *, ax: Axes | None = None) -> Figure:
    """One line per weight type: the score by block number (filled markers: selected).

    Weights outside numbered blocks (embeddings, heads) have no block number and are left out;
    1-D weights (norm scales, whose Spectrum SNR is always 1) too.
    """
    fig, ax = new_axes(ax, figsize=(7.2, 4.4))
    frame = result.scores[result.scores["layer"].notna() & (result.scores["rows"] > 1)]
    for wtype, group in frame.groupby("type", sort=True):
        x = group["layer"].astype(float).to_numpy()
        y = group["score"].astype(float).to_numpy()
        (line,) = ax.plot(x, y, marker="o", markersize=3.5, linewidth=1.2, label=str(wtype))
        chosen = group["selected"].to_numpy(dtype=bool)
        ax.scatter(x[chosen], y[chosen], s=36, color=line.get_color(), zorder=3)
    score = str(result.meta.get("score", "score"))
    percent = result.meta.get("top_percent")
    ax.set_xlabel("block")
    ax.set_ylabel(score)
    ax.set_title(
        f"{score} by depth" + (f" (large markers: top {percent:g}% per type)" if percent else "")
    )
    if len(frame) and np.isfinite(frame["score"].astype(float)).any():
        ax.legend(fontsize="small", ncols=2 if frame["type"].nunique() > 6 else 1)
    ax.grid(alpha=0.3)
    return fig
