"""Pull weight matrices (and, in ``features``, feature matrices) out of models."""

from .feature_loader import FeatureLoader, extract_features, iter_features, make_feature_loader
from .features import (
    PENULTIMATE,
    POOLS,
    FeatureExtractor,
    FeatureSite,
    feature_sites,
    pool_features,
    resolve_device,
)
from .fused import fused_layout, fused_part
from .modules import module_table, resolve_module
from .reader import FeatureReader, FeatureStream, ModelLike, label_models
from .weights import (
    KINDS,
    SOURCE_KINDS,
    SkippedLayer,
    SourceMatrix,
    SourcePairs,
    WeightMatrix,
    WeightPairs,
    adapter_table,
    iter_source_matrices,
    iter_weight_matrices,
    layer_table,
    pair_sources,
    pair_weight_matrices,
    source_layer_table,
)

__all__ = [
    "KINDS",
    "SOURCE_KINDS",
    "WeightMatrix",
    "SkippedLayer",
    "WeightPairs",
    "iter_weight_matrices",
    "pair_weight_matrices",
    "layer_table",
    "SourceMatrix",
    "SourcePairs",
    "iter_source_matrices",
    "pair_sources",
    "source_layer_table",
    "adapter_table",
    "fused_layout",
    "fused_part",
    "module_table",
    "resolve_module",
    "PENULTIMATE",
    "POOLS",
    "FeatureSite",
    "feature_sites",
    "pool_features",
    "resolve_device",
    "FeatureExtractor",
    "FeatureLoader",
    "make_feature_loader",
    "iter_features",
    "extract_features",
    "FeatureReader",
    "FeatureStream",
    "ModelLike",
    "label_models",
]
