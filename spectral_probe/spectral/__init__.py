"""Pure spectral maths on tensors: unfolding, SVD, eigensolvers, angles, summaries.

No I/O, no models. Every matrix decomposition of the package (SVD, ``eigh``, ``eigvalsh``)
is called here.
"""

from .angles import corresponding_cosines, principal_cosines, wedin_bounds, window_cosines
from .bases import canonical_correlations, nuclear_norm, orthonormal_basis
from .blocked import blocked_singular_values
from .compare import MatrixComparison, compare_matrices
from .eigen import (
    eigh,
    eigh_coordinates,
    eigvalsh,
    gram,
    one_lapack_thread,
    smallest_eigenpairs_device,
    smallest_eigenpairs_host,
    solved_on_host,
)
from .esd import (
    MPFit,
    PowerLawFit,
    conv_slice_eigenvalues,
    eigenvalues,
    esd_metrics,
    fit_power_law,
    ks_distance,
    mp_fit,
)
from .gram_pair import PairGrams, compare_blocked, compare_grams, pair_grams
from .intruders import (
    Intruders,
    detect_intruders,
    find_intruders,
    intruder_sweep,
    max_cosines,
    scale_intruders,
    scale_intruders_factored,
    similarity_matrix,
)
from .lowrank import LowRankSum, check_factors, factored_svd, top_singular
from .pair_change import (
    ENERGY_NAMES,
    PairChange,
    compare_grams_with_change,
    compare_with_change,
)
from .psd import psd_pinv, spd_solve
from .randomized import (
    BlockedOperator,
    DenseOperator,
    LinearOperator,
    RandomizedSVD,
    randomized_svd,
    triplet_residuals,
)
from .rank import (
    aspect_ratio,
    energy_rank,
    gavish_donoho_lambda,
    gavish_donoho_omega,
    gavish_donoho_rank,
    gavish_donoho_threshold,
    mp_cdf,
    mp_edges,
    mp_median,
    mp_singular_edges,
)
from .snr import iqr_sigma, matrix_snr, spectrum_snr, spectrum_threshold
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
from .update import (
    chance_subspace_energy,
    subspace_energy,
    update_frobenius,
    update_shape,
    update_singular_values,
)

__all__ = [
    "SVD",
    "svd",
    "singular_values",
    "spectral_norm",
    "svd_flip",
    "psd_pinv",
    "spd_solve",
    "orthonormal_basis",
    "nuclear_norm",
    "canonical_correlations",
    "gram",
    "eigh",
    "eigh_coordinates",
    "eigvalsh",
    "one_lapack_thread",
    "smallest_eigenpairs_host",
    "smallest_eigenpairs_device",
    "solved_on_host",
    "unfold_weight",
    "split_groups",
    "split_fused",
    "corresponding_cosines",
    "principal_cosines",
    "wedin_bounds",
    "window_cosines",
    "MatrixComparison",
    "compare_matrices",
    "compare_with_change",
    "PairChange",
    "ENERGY_NAMES",
    "compare_blocked",
    "compare_grams",
    "pair_grams",
    "PairGrams",
    "compare_grams_with_change",
    "stable_rank",
    "effective_rank",
    "relative_change",
    "leading_mean",
    "first_below",
    "tail_energy",
    "PowerLawFit",
    "MPFit",
    "eigenvalues",
    "conv_slice_eigenvalues",
    "fit_power_law",
    "ks_distance",
    "mp_fit",
    "esd_metrics",
    "aspect_ratio",
    "energy_rank",
    "gavish_donoho_lambda",
    "gavish_donoho_omega",
    "gavish_donoho_rank",
    "gavish_donoho_threshold",
    "mp_cdf",
    "mp_edges",
    "mp_median",
    "mp_singular_edges",
    "iqr_sigma",
    "spectrum_threshold",
    "spectrum_snr",
    "matrix_snr",
    "blocked_singular_values",
    "LowRankSum",
    "check_factors",
    "factored_svd",
    "top_singular",
    "BlockedOperator",
    "DenseOperator",
    "LinearOperator",
    "RandomizedSVD",
    "randomized_svd",
    "triplet_residuals",
    "Intruders",
    "detect_intruders",
    "find_intruders",
    "intruder_sweep",
    "max_cosines",
    "scale_intruders",
    "scale_intruders_factored",
    "similarity_matrix",
    "chance_subspace_energy",
    "subspace_energy",
    "update_frobenius",
    "update_shape",
    "update_singular_values",
]
