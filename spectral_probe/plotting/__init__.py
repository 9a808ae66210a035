"""Figures of analysis results. Plot functions take results, return a Figure, never show it.

The figures of fine-tuning runs live beside the runs, in :mod:`spectral_probe.training.figures`.
"""

from ._base import (
    FigureJob,
    new_axes,
    new_figure,
    palette,
    panel_axes,
    save_figure,
    save_figures,
)
from ._worker import FigureWorker, result_fields
from .esd import default_esd_layers, plot_alpha_profile, plot_esd_fits
from .feature_figures import feature_spectrum_figures, ranking_figures, similarity_figures
from .features import (
    plot_batch_spectra,
    plot_dataset_spectrum,
    plot_feature_overview,
    small_half_start,
)
from .select import plot_scores_by_depth
from .similarity import plot_similarity_by_depth, plot_similarity_heatmap
from .weights import (
    block_of,
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

__all__ = [
    "plot_scores_by_depth",
    "plot_similarity_heatmap",
    "plot_similarity_by_depth",
    "new_axes",
    "new_figure",
    "palette",
    "panel_axes",
    "save_figure",
    "save_figures",
    "FigureJob",
    "FigureWorker",
    "result_fields",
    "plot_alpha_profile",
    "plot_esd_fits",
    "default_esd_layers",
    "block_of",
    "default_plot_layers",
    "plot_corresponding_angles",
    "plot_angle_heatmap",
    "plot_weight_spectra",
    "plot_intruders_by_depth",
    "plot_update_energy",
    "plot_intruder_sweep",
    "plot_similarity_matrix",
    "plot_fine_tunes_by_depth",
    "plot_batch_spectra",
    "plot_dataset_spectrum",
    "plot_feature_overview",
    "small_half_start",
    "feature_spectrum_figures",
    "similarity_figures",
    "ranking_figures",
]
