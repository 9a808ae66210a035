"""Analyses that turn models (and data) into result objects of tidy tables."""

from ._resume import clear_store
from ._sources import check_split_groups, is_plain_file, uses_sources
from ._spectra import (
    BatchSpectra,
    NonFiniteFeaturesError,
    StreamingGram,
    aggregate_per_index,
    normalised_spectra,
)
from .esd import ESD_COLUMNS, LayerESD, esd_layers
from .features import (
    FEATURE_SUMMARY_COLUMNS,
    QUANTITIES,
    FeatureSpectra,
    combine_spectra,
    feature_spectrum,
    spectra_from_features,
)
from .select import SCORES, LayerSelection, score_layers
from .sharded import compare_weights_sharded
from .similarity import DEFAULT_SAMPLE, FeatureSimilarity, compare_features, select_layers
from .weights import (
    CHANGE_COLUMNS,
    INTRUDER_COLUMNS,
    SUMMARY_COLUMNS,
    WeightComparison,
    compare_weights,
)

__all__ = [
    "uses_sources",
    "is_plain_file",
    "check_split_groups",
    "clear_store",
    "LayerSelection",
    "score_layers",
    "SCORES",
    "FeatureSimilarity",
    "compare_features",
    "select_layers",
    "DEFAULT_SAMPLE",
    "WeightComparison",
    "compare_weights",
    "compare_weights_sharded",
    "SUMMARY_COLUMNS",
    "CHANGE_COLUMNS",
    "INTRUDER_COLUMNS",
    "LayerESD",
    "esd_layers",
    "ESD_COLUMNS",
    "FeatureSpectra",
    "feature_spectrum",
    "spectra_from_features",
    "combine_spectra",
    "FEATURE_SUMMARY_COLUMNS",
    "QUANTITIES",
    "BatchSpectra",
    "StreamingGram",
    "NonFiniteFeaturesError",
    "aggregate_per_index",
    "normalised_spectra",
]
