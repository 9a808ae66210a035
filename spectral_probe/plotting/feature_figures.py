"""The figure lists of the feature analyses (``feature-spectrum``, ``compare-features``,
``rank-models``) as :data:`~spectral_probe.plotting.FigureJob` lists for
:func:`~spectral_probe.plotting.save_figures`.

Each job is ``(draw, path, cost)``; the costs (relative drawing times) only order and balance
the work when several processes draw.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from ._base import FigureJob
from .features import plot_batch_spectra, plot_dataset_spectrum
from .similarity import plot_similarity_by_depth, plot_similarity_heatmap
from .transferability import plot_model_ranking

__all__ = ["feature_spectrum_figures", "similarity_figures", "ranking_figures"]


def feature_spectrum_figures(result: Any, directory: Path) -> list[FigureJob]:
    """A :class:`~spectral_probe.analysis.FeatureSpectra`'s figures: the batch spectra (all,
    the smaller half, normalised) and, when it was accumulated, the dataset-level spectrum."""
    jobs: list[FigureJob] = [
        (lambda: plot_batch_spectra(result), directory / "batch_spectra.png", 1.0),
        (
            lambda: plot_batch_spectra(result, half=True),
            directory / "batch_spectra_small_half.png",
            1.0,
        ),
        (
            lambda: plot_batch_spectra(result, normalise=True),
            directory / "batch_spectra_normalised.png",
            1.0,
        ),
    ]
    if not result.dataset.empty:
        jobs.append(
            (lambda: plot_dataset_spectrum(result), directory / "dataset_spectrum.png", 0.5)
        )
    return jobs


def similarity_figures(result: Any, directory: Path) -> list[FigureJob]:
    """A :class:`~spectral_probe.analysis.FeatureSimilarity`'s figures: one layer x layer
    heatmap per metric, and the matched layers' similarity by depth."""
    jobs: list[FigureJob] = [
        (partial(plot_similarity_heatmap, result, name), directory / f"heatmap_{name}.png", 1.0)
        for name in result.metrics
    ]
    jobs.append((lambda: plot_similarity_by_depth(result), directory / "by_depth.png", 0.5))
    return jobs


def ranking_figures(result: Any, directory: Path) -> list[FigureJob]:
    """A :class:`~spectral_probe.transferability.ModelRanking`'s figure: the ranks heatmap."""
    return [(lambda: plot_model_ranking(result), directory / "ranking.png", 1.0)]
