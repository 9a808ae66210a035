"""The figure lists of the weight analyses (``compare-weights``, ``layers --esd``) as
:data:`~spectral_probe.plotting.FigureJob` lists for :func:`~spectral_probe.plotting.save_figures`.

Each job is ``(draw, path, cost)``; the costs are measured drawing times in seconds (ResNet-50,
2026-12-05): 0.12 s for an angle figure, 0.18 s for a heatmap, 0.06 + 0.045 s per panel for the
spectra; they only order and balance the figure process's work.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ._base import FigureJob
from .esd import plot_alpha_profile, plot_esd_fits
from .weights import (
    default_plot_layers,
    plot_angle_heatmap,
    plot_corresponding_angles,
    plot_weight_spectra,
)
from .what_changed import (
    plot_fine_tunes_by_depth,
    plot_intruder_sweep,
    plot_intruders_by_depth,
    plot_similarity_matrix,
    plot_update_energy,
)

__all__ = ["esd_figures", "weight_comparison_figures", "fine_tunes_figures"]


def esd_figures(result: Any, directory: Path, layers: list[str] | None = None) -> list[FigureJob]:
    """The α profile by depth and the ESD-with-fit panels (``layers``: default chosen there)."""
    return [
        (lambda: plot_alpha_profile(result), directory / "alpha_profile.png", 1.0),
        (lambda: plot_esd_fits(result, layers), directory / "esd_fits.png", 1.5),
    ]


def _change_figures(result: Any, directory: Path) -> list[FigureJob]:
    """Intruders by depth, the update's top/bottom-r energy by depth, the epsilon sweep."""
    return [
        (lambda: plot_intruders_by_depth(result), directory / "intruders_by_depth.png", 1.0),
        (lambda: plot_update_energy(result), directory / "update_energy.png", 1.0),
        (lambda: plot_intruder_sweep(result), directory / "intruder_sweep.png", 0.5),
    ]


def weight_comparison_figures(
    result: Any,
    directory: Path,
    layers: list[str] | None = None,
    esd_layers: list[str] | None = None,
    similarity: Any = None,
) -> list[FigureJob]:
    """compare-weights' figures of a :class:`~spectral_probe.analysis.WeightComparison` (or
    its :func:`~spectral_probe.plotting.result_fields`): angles, heatmaps, spectra; the ESD
    figures with ``esd``; intruders and the update's energy when intruders were computed; one
    layer's |cos| matrix when ``similarity`` (a
    :class:`~spectral_probe.analysis.layer_similarity.LayerSimilarity`) is given."""
    jobs = esd_figures(result, directory, esd_layers) if not result.esd.empty else []
    if not result.intruders.empty:
        jobs += _change_figures(result, directory)
    if similarity is not None:
        jobs.append(
            (
                partial(plot_similarity_matrix, similarity),
                directory / "similarity_matrix.png",
                0.5,
            )
        )
    if result.angles.empty:
        return jobs
    panels = len(layers or default_plot_layers(result.layers["layer"], result.layers["kind"]))
    return [
        *jobs,
        (
            lambda: plot_corresponding_angles(result, layers),
            directory / "corresponding_angles.png",
            1.0,
        ),
        (
            lambda: plot_corresponding_angles(result, layers, window=True),
            directory / "corresponding_angles_window.png",
            1.0,
        ),
        (lambda: plot_angle_heatmap(result), directory / "angle_heatmap.png", 1.5),
        (
            lambda: plot_angle_heatmap(result, value="cos_window"),
            directory / "angle_heatmap_window.png",
            1.5,
        ),
        (
            lambda: plot_weight_spectra(result, layers),
            directory / "weight_spectra.png",
            0.5 + 0.4 * panels,
        ),
    ]


def fine_tunes_figures(layers: Any, directory: Path) -> list[FigureJob]:
    """Several fine-tunes of one base: per-layer curves with one line per fine-tune, from the
    gathered per-layer table (``FineTunes.layers``)."""
    result = SimpleNamespace(layers=layers)
    jobs: list[FigureJob] = [
        (
            lambda: plot_fine_tunes_by_depth(result, value="w_rel_change"),
            directory / "fine_tunes_w_rel_change.png",
            1.0,
        )
    ]
    if "intruders" in layers:
        jobs += [
            (
                partial(plot_fine_tunes_by_depth, result, value=value),
                directory / f"fine_tunes_{value}.png",
                1.0,
            )
            for value in ("intruders", "top_energy")
        ]
    return jobs
