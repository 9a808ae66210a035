"""Figure of a model ranking: ranks per score as a heatmap, scores written in the cells."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_model_ranking"]


def plot_model_ranking(result: Any, ax: Axes | None = None) -> Figure:
    """Heatmap of the rank of each model (rows) under each score and the consensus (columns).

    Cells show the score's value (``skipped`` where a model has none); colour is the rank,
    1 = best. ``result`` is a :class:`~spectral_probe.transferability.ModelRanking`.
    """
    table = result.table
    names = list(result.score_names)
    cols = [*names, "consensus"]
    ranks = np.array([table[f"{n}_rank"] for n in names] + [table["consensus_rank"]], dtype=float).T
    fig, ax = new_axes(ax, figsize=(1.1 * len(cols) + 2.5, 0.55 * len(table) + 1.6))
    masked = np.ma.masked_invalid(ranks)
    image = ax.imshow(masked, cmap="viridis_r", aspect="auto", vmin=1, vmax=max(len(table), 2))
    for i in range(len(table)):
        for j, name in enumerate(cols):
            value = table["consensus_rank"].iloc[i] if name == "consensus" else table[name].iloc[i]
            text = (
                "skipped"
                if value != value
                else (f"{value:.2f}" if name == "consensus" else f"{value:.3g}")
            )
            rank = ranks[i, j]
            dark = (
                rank == rank and (rank - 1) / max(len(table) - 1, 1) > 0.5
            )  # dark cell: white text
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black"
            )
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(table)), list(table["model"]))
    ax.set_title(
        f"transferability on {result.meta['data']} ({result.meta['split']}, N = {result.meta['n_samples']})"
    )
    fig.colorbar(image, ax=ax, label="rank (1 = best)")
    return fig
