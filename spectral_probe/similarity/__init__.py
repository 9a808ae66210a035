"""Representation similarity between two sets of features on the same samples.

Pure functions on ``(N, d)`` matrices (tensors or arrays; the widths of the two sides may
differ), every decomposition through :mod:`spectral_probe.spectral`:

* :func:`linear_cka` (plain or ``debiased``) and :func:`rbf_cka`: centred kernel alignment;
* :func:`svcca` and :func:`pwcca`: canonical-correlation similarities;
* :func:`procrustes`: the orthogonal Procrustes distance;
* :class:`StreamingCKA`: linear CKA of many layer pairs over batches, memory flat in ``N``;
* :data:`METRICS` / :func:`get_metric` / :func:`pairwise`: the registry the CLI iterates over.
"""

from ._checks import DegenerateFeaturesError
from .cca import pwcca, svcca, svcca_basis
from .cka import linear_cka, rbf_cka, rbf_gram
from .procrustes import procrustes
from .registry import METRICS, SimilarityMetric, get_metric, pairwise
from .streaming import StreamingCKA

__all__ = [
    "METRICS",
    "DegenerateFeaturesError",
    "SimilarityMetric",
    "StreamingCKA",
    "get_metric",
    "linear_cka",
    "pairwise",
    "procrustes",
    "pwcca",
    "rbf_cka",
    "rbf_gram",
    "svcca",
    "svcca_basis",
]
