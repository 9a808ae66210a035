"""Pure spectral maths on tensors: unfolding, SVD, angles, summaries. No I/O, no models."""

from .angles import corresponding_cosines, principal_cosines, wedin_bounds, window_cosines
from .compare import MatrixComparison, compare_matrices
from .summary import (
    effective_rank,
    first_below,
    leading_mean,
    relative_change,
    stable_rank,
    tail_energy,
)
from .svd import SVD, singular_values, spectral_norm, svd, svd_flip
from .unfold import split_fused, split_groups, unfold_weight

__all__ = [
    "SVD",
    "svd",
    "singular_values",
    "spectral_norm",
    "svd_flip",
    "unfold_weight",
    "split_groups",
    "split_fused",
    "corresponding_cosines",
    "principal_cosines",
    "wedin_bounds",
    "window_cosines",
    "MatrixComparison",
    "compare_matrices",
    "stable_rank",
    "effective_rank",
    "relative_change",
    "leading_mean",
    "first_below",
    "tail_energy",
]
