"""Pull weight matrices (and, in ``features``, feature matrices) out of models."""

from .modules import module_table, resolve_module
from .weights import (
    KINDS,
    SkippedLayer,
    WeightMatrix,
    WeightPairs,
    iter_weight_matrices,
    layer_table,
    pair_weight_matrices,
)

__all__ = [
    "KINDS",
    "WeightMatrix",
    "SkippedLayer",
    "WeightPairs",
    "iter_weight_matrices",
    "pair_weight_matrices",
    "layer_table",
    "module_table",
    "resolve_module",
]
