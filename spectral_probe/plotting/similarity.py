"""Figures of a :class:`~spectral_probe.analysis.FeatureSimilarity`.

* :func:`plot_similarity_heatmap`: one metric for every (layer of A, layer of B) pair;
* :func:`plot_similarity_by_depth`: the matched layers' values against depth, one line per
  metric: the representation-space twin of the paper's Figure 1(b).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._base import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..analysis import FeatureSimilarity

__all__ = ["plot_similarity_heatmap", "plot_similarity_by_depth"]

_DISTANCES = {"procrustes"}


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def plot_similarity_heatmap(
    result: FeatureSimilarity,
    metric: str = "cka",
    *,
    annotate: bool | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Layer x layer values of ``metric``: rows A's layers, columns B's, input to output.

    Args:
        result: from :func:`~spectral_probe.analysis.compare_features`.
        metric: one of ``result.metrics``.
        annotate: write the values in the cells (default: when both sides have <= 12 layers).
        ax: draw here instead of a new figure.
    """
    table = result.matrix(metric)
    rows, cols = list(table.index), list(table.columns)
    fig, ax = new_axes(ax, (1.2 + 0.55 * max(len(cols), 4), 1.0 + 0.45 * max(len(rows), 4)))
    values = table.to_numpy(dtype=float)
    distance = metric in _DISTANCES
    vmax = 2.0 if distance else 1.0
    image = ax.imshow(
        values, cmap="magma_r" if distance else "magma", vmin=0.0, vmax=vmax, aspect="auto"
    )
    ax.set_xticks(range(len(cols)), [_short(c) for c in cols], rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), [_short(r) for r in rows], fontsize=7)
    ax.set_xlabel(f"{_short(result.meta['model_b'], 40)} (B)")
    ax.set_ylabel(f"{_short(result.meta['model_a'], 40)} (A)")
    if annotate if annotate is not None else max(len(rows), len(cols)) <= 12:
        for i in range(len(rows)):
            for j in range(len(cols)):
                v = values[i, j]
                light = (v / vmax < 0.5) != distance
                ax.text(
                    j,
                    i,
                    f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=6,
                    color="white" if light else "black",
                )
    ax.figure.colorbar(image, ax=ax, label=metric + (" (distance)" if distance else ""))
    n = int(result.pairs.loc[result.pairs["metric"] == metric, "n"].iloc[0])
    ax.set_title(f"{metric} on {n} samples", fontsize=9)
    return fig


def plot_similarity_by_depth(
    result: FeatureSimilarity,
    metrics: Sequence[str] | None = None,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Matched layers' similarity against depth, one line per metric.

    Similarities (1 = same representation up to the metric's invariances) use the left
    axis in ``[0, 1]``; a distance (Procrustes, 0 = same) is dashed on a right axis.
    """
    names = list(metrics) if metrics is not None else result.metrics
    unknown = [m for m in names if m not in result.metrics]
    if unknown:
        raise ValueError(f"expected metrics in {result.metrics}, found {unknown}")
    df = result.matched
    fig, ax = new_axes(ax, (max(5.0, 0.55 * len(df) + 2.0), 3.6))
    x = list(range(len(df)))
    twin = None
    for k, name in enumerate(names):
        color = f"C{k % 10}"
        if name in _DISTANCES:
            twin = twin or ax.twinx()
            twin.plot(x, df[name], marker="s", ls="--", color=color, label=name)
            twin.set_ylabel("distance (dashed)")
            twin.set_ylim(bottom=0.0)
        else:
            ax.plot(x, df[name], marker="o", color=color, label=name)
    similar = [n for n in names if n not in _DISTANCES]
    low = float(df[similar].to_numpy(dtype=float).min()) if similar and len(df) else 0.0
    ax.set_ylim(min(0.0, low), 1.02)
    labels = [a if a == b else f"{a} / {b}" for a, b in zip(df["layer_a"], df["layer_b"])]
    ax.set_xticks(x, [_short(s) for s in labels], rotation=45, ha="right", fontsize=7)
    ax.set_xlabel("matched layer, input to output")
    ax.set_ylabel("similarity of A and B")
    ax.grid(alpha=0.3)
    handles, texts = ax.get_legend_handles_labels()
    if twin is not None:
        more = twin.get_legend_handles_labels()
        handles, texts = handles + more[0], texts + more[1]
    ax.legend(handles, texts, fontsize=8, loc="best")
    ax.set_title(
        f"{_short(result.meta['model_a'], 40)} vs {_short(result.meta['model_b'], 40)}", fontsize=9
    )
    return fig
