"""Figures of what changed in a fine-tune: intruder dimensions and the update's energy, by depth.

They draw a :class:`~spectral_probe.analysis.WeightComparison` (or its fields, in the figure
process): ``layers`` with the :data:`~spectral_probe.analysis.weights.CHANGE_COLUMNS` and the
tidy ``intruders`` table. Layers are in the comparison's order (depth order for weight files).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "plot_fine_tunes_by_depth",
    "plot_intruders_by_depth",
    "plot_update_energy",
    "plot_intruder_sweep",
    "plot_similarity_matrix",
]

#: the sweep's epsilon grid, 0.05 ... 0.95 (as ``analysis.update.DEFAULT_EPSILONS``)
EPSILONS = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _changed(result: Any) -> Any:
    layers = result.layers
    if "intruders" not in layers:
        raise ValueError(
            "expected a comparison with intruders (compare_weights with intruder_k > 0, "
            "without top), found none"
        )
    return layers[layers["status"] == "ok"].reset_index(drop=True)


def _tail(label: str, width: int = 48) -> str:
    return label if len(label) <= width else "…" + label[-(width - 1) :]


def _layer_ticks(ax: Axes, names: Sequence[str]) -> None:
    step = max(1, len(names) // 25)
    ax.set_xticks(
        range(0, len(names), step),
        [names[i] for i in range(0, len(names), step)],
        rotation=90,
        fontsize=6,
    )


def plot_intruders_by_depth(result: Any, *, ax: Axes | None = None) -> Figure:
    """Intruder count of each layer, left and right singular vectors, in layer order."""
    frame = _changed(result)
    fig, ax = new_axes(ax, (max(6.4, 0.12 * len(frame) + 2), 4.0))
    x = np.arange(len(frame))
    width = 0.42
    ax.bar(x - width / 2, frame["intruders"].astype(float), width, label="left (u_i)")
    ax.bar(x + width / 2, frame["intruders_right"].astype(float), width, label="right (v_i)")
    _layer_ticks(ax, list(frame["layer"]))
    k, eps = result.meta.get("intruder_k"), result.meta.get("intruder_epsilon")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("intruders among B's top-k vectors")
    ax.set_title(f"intruder dimensions by depth (k = {k}, ε = {eps})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return fig


def plot_update_energy(result: Any, *, ax: Axes | None = None) -> Figure:
    """Share of ||ΔW||_F^2 in A's top-r and bottom-r singular subspaces (PiSSA vs MiLoRA), by layer.

    The dotted line is what a random update of the same shape puts in an r x r subspace pair.
    """
    frame = _changed(result)
    fig, ax = new_axes(ax, (max(6.4, 0.12 * len(frame) + 2), 4.0))
    x = np.arange(len(frame))
    ax.plot(x, frame["top_energy"].astype(float), marker="o", ms=3, lw=1, label="top-r (PiSSA)")
    ax.plot(
        x, frame["bottom_energy"].astype(float), marker="s", ms=3, lw=1, label="bottom-r (MiLoRA)"
    )
    ax.plot(
        x, frame["chance_energy"].astype(float), ls=":", color="0.4", lw=1, label="random update"
    )
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_ylim(0, 1.05)
    _layer_ticks(ax, list(frame["layer"]))
    ax.set_ylabel("share of ||ΔW||²_F")
    ax.set_title("ΔW energy in A's top-r vs bottom-r singular subspaces")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def plot_intruder_sweep(
    result: Any, *, epsilons: Sequence[float] = EPSILONS, ax: Axes | None = None
) -> Figure:
    """Intruders in the whole model against ε (left and right); the run's ε marked."""
    table = result.intruders
    if table is None or table.empty:
        raise ValueError("expected a comparison with an intruders table, found none")
    fig, ax = new_axes(ax, (5.6, 4.0))
    eps = np.asarray(epsilons, dtype=float)
    for side, marker in (("left", "o"), ("right", "s")):
        cos = table.loc[table["side"] == side, "max_cos"].to_numpy(dtype=float)
        counts = (cos[None, :] < eps[:, None]).sum(axis=1)
        ax.plot(eps, counts, marker=marker, ms=3, lw=1, label=side)
    chosen = result.meta.get("intruder_epsilon")
    if chosen is not None:
        ax.axvline(float(chosen), color="0.5", ls="--", lw=1, label=f"ε = {chosen:g}")
    ax.set_xlabel("ε (intruder: max |cos| with every vector of A below ε)")
    ax.set_ylabel("intruders, all layers")
    ax.set_title(f"intruder count against ε (k = {result.meta.get('intruder_k')})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def plot_fine_tunes_by_depth(
    result: Any, *, value: str = "intruders", ax: Axes | None = None
) -> Figure:
    """One line per fine-tune of one base: ``value`` (a per-layer column) by layer.

    ``result`` is a :class:`~spectral_probe.analysis.fine_tunes.FineTuneComparison` (its
    ``layers`` table has a ``fine_tune`` column); layers in the first fine-tune's order.
    """
    frame = result.layers
    if value not in frame:
        raise ValueError(f"expected a per-layer column {value!r}, found {list(frame.columns)}")
    order = list(dict.fromkeys(frame.loc[frame["fine_tune"] == frame["fine_tune"].min(), "layer"]))
    position = {name: i for i, name in enumerate(order)}
    fig, ax = new_axes(ax, (max(6.4, 0.12 * len(order) + 2), 4.0))
    for (i, label), group in frame.groupby(["fine_tune", "model_b"], sort=True):
        shown = group[group["layer"].isin(position)]
        x = shown["layer"].map(position).to_numpy()
        ax.plot(
            x, shown[value].astype(float), marker="o", ms=3, lw=1, label=f"{i}: {_tail(str(label))}"
        )
    _layer_ticks(ax, order)
    ax.set_ylabel(value)
    ax.set_title(f"{value} by depth, one line per fine-tune")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def plot_similarity_matrix(
    similarity: Any, *, columns: int | None = None, ax: Axes | None = None
) -> Figure:
    r"""One layer's :math:`|\cos|` matrix: B's top-k singular vectors (rows) against A's (columns).

    ``similarity`` is a :class:`~spectral_probe.analysis.layer_similarity.LayerSimilarity`
    (Figure 1 of Shuttleworth et al.). Intruder rows (largest :math:`|\cos|` below ε) are
    labelled in red; ``columns`` keeps A's first ``columns`` vectors (default all).
    """
    frame = similarity.frame
    if frame is None or frame.empty:
        raise ValueError("expected a similarity table with rows, found none")
    grid = frame.pivot(index="tuned", columns="base", values="abs_cos").sort_index()
    grid = grid.reindex(sorted(grid.columns), axis=1)
    if columns is not None:
        grid = grid.iloc[:, :columns]
    fig, ax = new_axes(ax, (7.2, max(2.6, 0.28 * len(grid) + 1.4)))
    image = ax.imshow(
        grid.to_numpy(dtype=float),
        aspect="auto",
        cmap="viridis",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
    )
    rows = list(grid.index)
    intruders = set(similarity.intruders)
    ax.set_yticks(
        range(len(rows)), [f"{i + 1}" + (" (intruder)" if i in intruders else "") for i in rows]
    )
    for label, i in zip(ax.get_yticklabels(), rows, strict=True):
        if i in intruders:
            label.set_color("tab:red")
    side = "u" if similarity.side == "left" else "v"
    ax.set_xlabel(f"singular vector j of A (pre-trained), {side}_j")
    ax.set_ylabel(f"singular vector i of B, {side}_i")
    m, n = similarity.shape
    ax.set_title(
        f"|cos| between B's top {similarity.k} and A's singular vectors: {_tail(similarity.layer)} "
        f"({m}×{n}); {len(intruders)} intruder(s) at ε = {similarity.epsilon:g}",
        fontsize=8,
    )
    fig.colorbar(image, ax=ax, label="|cos|")
    return fig
