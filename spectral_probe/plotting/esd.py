"""Figures of heavy-tailed ESD metrics: the alpha profile of a model (or a pair) and ESDs with their fits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._base import new_axes, panel_axes

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_alpha_profile", "plot_esd_fits", "default_esd_layers"]


def _frames(result: Any) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """``(label, per-layer metrics, tidy (layer, eigenvalue))`` for each model in ``result``."""
    import pandas as pd

    if hasattr(result, "eigenvalues") and hasattr(result, "layers") and "alpha" in result.layers:
        return [(str(result.meta.get("model", "model")), result.layers, result.eigenvalues)]
    esd = getattr(result, "esd", None)
    if esd is None or esd.empty:
        raise ValueError(
            "expected an ESD result (esd_layers, or compare_weights with esd=True), found none"
        )
    out = []
    for tag, col in (("a", "sigma_a"), ("b", "sigma_b")):
        label = f"{tag}: {result.meta.get(f'model_{tag}', tag)}"
        evals = pd.DataFrame(
            {"layer": result.angles["layer"], "eigenvalue": result.angles[col].astype(float) ** 2}
        )
        out.append((label, esd[esd["model"] == tag].reset_index(drop=True), evals))
    return out


def default_esd_layers(result: Any, count: int = 4) -> list[str]:
    """Layers for :func:`plot_esd_fits`: the lowest and highest alpha, and the first and last layer."""
    _, frame, _ = _frames(result)[0]
    fitted = frame[frame["alpha"].notna()]
    if fitted.empty:
        return list(frame["layer"].head(count))
    picks = [
        fitted["layer"].iloc[0],
        fitted.loc[fitted["alpha"].idxmin(), "layer"],
        fitted.loc[fitted["alpha"].idxmax(), "layer"],
        fitted["layer"].iloc[-1],
    ]
    return list(dict.fromkeys(picks))[:count]


def plot_alpha_profile(result: Any, *, ax: Axes | None = None) -> Figure:
    """Alpha per layer (in module order) for one model or both models of a comparison.

    The band :math:`2 \\le \\alpha \\le 6` is WeightWatcher's well-trained range; layers whose
    alpha is missing (too few eigenvalues) are left out of the line.
    """
    frames = _frames(result)
    fig, ax = new_axes(ax, (max(6.4, 0.12 * len(frames[0][1]) + 2), 4.0))
    if "2 ≤ α ≤ 6" not in ax.get_legend_handles_labels()[1]:  # once per axes when overlaying
        ax.axhspan(2.0, 6.0, color="0.92", zorder=0, label="2 ≤ α ≤ 6")
    for (label, frame, _), marker in zip(frames, "os"):
        x = np.arange(len(frame))
        ax.plot(
            x,
            frame["alpha"].astype(float),
            marker=marker,
            ms=3,
            lw=1,
            label=f"{label} (mean {frame['alpha'].mean():.2f})",
        )
    names = list(frames[0][1]["layer"])
    step = max(1, len(names) // 25)
    ax.set_xticks(
        range(0, len(names), step),
        [names[i] for i in range(0, len(names), step)],
        rotation=90,
        fontsize=6,
    )
    ax.set_ylabel("α (power-law exponent of the ESD tail)")
    ax.set_title("α per layer")
    ax.legend(fontsize=7)
    return fig


def plot_esd_fits(
    result: Any,
    layers: Sequence[str] | None = None,
    *,
    bins: int = 40,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Log-log ESD of each chosen layer with its fitted power law from ``xmin`` on.

    The density is a histogram on logarithmic bins of the eigenvalues above the fit's threshold
    (:data:`~spectral_probe.spectral.esd.EVALS_THRESHOLD`; at most ``bins``, and
    about four eigenvalues per bin for small layers); the line is the fitted
    :math:`p(\\lambda) = \\frac{\\alpha - 1}{x_{\\min}} (\\lambda / x_{\\min})^{-\\alpha}`, scaled by
    the tail's share of the eigenvalues, from :math:`x_{\\min}` to :math:`\\lambda_{\\max}`.
    For a comparison both models are drawn. ``ax``: one Axes per layer to draw on (default: a
    new figure, two panels a row).
    """
    from ..spectral.esd import EVALS_THRESHOLD  # here: the spectral maths imports torch

    frames = _frames(result)
    layers = list(layers) if layers else default_esd_layers(result)
    known = set(frames[0][1]["layer"])
    missing = [name for name in layers if name not in known]
    if missing:
        raise ValueError(f"expected layers among the analysed ones, found {', '.join(missing)}")
    fig, axes, _ = panel_axes(ax, len(layers), ncols=2, panel=(5.0, 3.6))
    for ax, name in zip(axes, layers):
        for (label, frame, evals), color in zip(frames, ("C0", "C1")):
            lam = evals.loc[evals["layer"] == name, "eigenvalue"].to_numpy(float)
            lam = lam[lam > EVALS_THRESHOLD]  # what the fit sees
            if lam.size == 0:
                continue
            count = min(bins, max(4, lam.size // 4))  # few eigenvalues, few bins
            edges = np.geomspace(lam.min(), lam.max() * 1.0001, count + 1)
            dens, _ = np.histogram(lam, bins=edges, density=True)
            centres = np.sqrt(edges[:-1] * edges[1:])
            keep = dens > 0
            ax.plot(
                centres[keep],
                dens[keep],
                ".",
                color=color,
                ms=4,
                label=label.split(":")[0] if len(frames) > 1 else "ESD",
            )
            row = frame[frame["layer"] == name].iloc[0]
            if row["alpha"] == row["alpha"]:
                a, xmin = float(row["alpha"]), float(row["xmin"])
                share = float(row["n_tail"]) / lam.size
                x = np.geomspace(xmin, lam.max(), 50)
                ax.plot(
                    x,
                    share * (a - 1) / xmin * (x / xmin) ** (-a),
                    "-",
                    color=color,
                    lw=1.5,
                    label=f"α = {a:.2f}",
                )
                ax.axvline(xmin, color=color, ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("λ = σ²")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    return fig
