"""The registry of similarity metrics: what the CLI offers and the common tests iterate over.

Each :class:`SimilarityMetric` names a pure function ``(X, Y) -> float`` and how to compute
many pairs at once (:func:`pairwise`): a per-matrix ``prepare`` step done once per layer and
a cheap ``compare`` of two prepared layers. Adding a metric is one function plus one entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor

from ..errors import ConfigError
from ._checks import centre, check_pair, check_spread, feature_matrix
from .cca import _pwcca, pwcca, svcca, svcca_basis
from .cka import linear_cka, rbf_cka, rbf_gram
from .procrustes import _procrustes, procrustes, procrustes_normalise
from .streaming import StreamingCKA

__all__ = ["METRICS", "SimilarityMetric", "get_metric", "pairwise"]


@dataclass(frozen=True)
class SimilarityMetric:
    """One similarity (or distance) between two feature matrices on the same samples.

    Attributes:
        name: the CLI name (``cka``, ``debiased-cka``...).
        function: the pure function ``function(X, Y, **options) -> float``.
        kind: ``"similarity"`` (1 = same up to the metric's invariances) or ``"distance"``
            (0 = same).
        streaming: computed over every sample in flat memory (linear CKA); otherwise on a
            bounded sample of rows.
        symmetric: ``f(X, Y) == f(Y, X)``.
        description: one line for help texts.
        options: the keyword options ``function`` takes, with their defaults.
    """

    name: str
    function: Callable[..., float]
    kind: Literal["similarity", "distance"]
    streaming: bool
    symmetric: bool
    description: str
    options: dict[str, Any]
    prepare: Callable[..., Any] | None = None
    compare: Callable[[Any, Any], float] | None = None


def _centred_checked(x: Tensor, name: str) -> Tensor:
    xc = centre(x)
    check_spread(float(xc.square().sum()), float(x.square().sum()), name)
    return xc


def _prepare_rbf(x: Tensor, name: str, sigma: float = 0.8) -> Tensor:
    _centred_checked(x, name)
    k = rbf_gram(x, float(sigma))
    k = k - k.mean(0, keepdim=True)
    k = k - k.mean(1, keepdim=True)
    return k / k.norm()


def _prepare_svcca(x: Tensor, name: str, keep: float = 0.99) -> Tensor:
    return svcca_basis(_centred_checked(x, name), keep)


def _compare_svcca(qx: Tensor, qy: Tensor) -> float:
    from ..spectral import canonical_correlations

    return float(canonical_correlations(qx, qy)[0].mean())


def _prepare_pwcca(x: Tensor, name: str) -> tuple[Tensor, Tensor]:
    from ..spectral import orthonormal_basis

    xc = _centred_checked(x, name)
    return xc, orthonormal_basis(xc)


def _debiased_cka(x: Any, y: Any) -> float:
    return linear_cka(x, y, debiased=True)


METRICS: dict[str, SimilarityMetric] = {
    m.name: m
    for m in (
        SimilarityMetric(
            "cka",
            linear_cka,
            "similarity",
            True,
            True,
            "linear CKA (Kornblith et al. 2019), over every sample",
            {},
        ),
        SimilarityMetric(
            "debiased-cka",
            _debiased_cka,
            "similarity",
            True,
            True,
            "linear CKA with the unbiased HSIC (Nguyen et al. 2021), over every sample",
            {},
        ),
        SimilarityMetric(
            "rbf-cka",
            rbf_cka,
            "similarity",
            False,
            True,
            "CKA with RBF kernels, bandwidth sigma x median distance",
            {"sigma": 0.8},
            _prepare_rbf,
            lambda a, b: float((a * b).sum()),
        ),
        SimilarityMetric(
            "svcca",
            svcca,
            "similarity",
            False,
            True,
            "mean canonical correlation after keeping 99% of the variance (Raghu et al. 2017)",
            {"keep": 0.99},
            _prepare_svcca,
            _compare_svcca,
        ),
        SimilarityMetric(
            "pwcca",
            pwcca,
            "similarity",
            False,
            False,
            "projection-weighted canonical correlation (Morcos et al. 2018)",
            {},
            _prepare_pwcca,
            lambda a, b: _pwcca(a[0], a[1], b[0], b[1]),
        ),
        SimilarityMetric(
            "procrustes",
            procrustes,
            "distance",
            False,
            True,
            "orthogonal Procrustes distance in [0, 2] (Ding et al. 2021)",
            {},
            procrustes_normalise,
            _procrustes,
        ),
    )
}


def get_metric(name: str) -> SimilarityMetric:
    """The metric called ``name``; an unknown name lists the valid ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise ConfigError(f"expected a metric in {list(METRICS)}, found {name!r}") from None


def pairwise(
    name: str,
    xs: Sequence[Any],
    ys: Sequence[Any],
    *,
    names_x: Sequence[str] | None = None,
    names_y: Sequence[str] | None = None,
    **options: Any,
) -> Tensor:
    """The ``k x m`` matrix ``metric(xs[i], ys[j])``, each layer prepared once.

    Args:
        name: a key of :data:`METRICS`.
        xs: feature matrices ``(N, p_i)``, all on the same ``N`` samples.
        ys: feature matrices ``(N, q_j)`` on the same samples.
        names_x: layer names of ``xs`` for error messages.
        names_y: layer names of ``ys``.
        **options: the metric's options (``sigma`` for ``rbf-cka``, ``keep`` for ``svcca``).

    Examples:
        >>> x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
        >>> pairwise("procrustes", [x, x[:, :2]], [x.flip(1)]).shape
        torch.Size([2, 1])
    """
    metric = get_metric(name)
    unknown = sorted(set(options) - set(metric.options))
    if unknown:
        raise ConfigError(
            f"expected options of {name} in {sorted(metric.options)}, found {unknown}"
        )
    nx = list(names_x) if names_x is not None else [f"X[{i}]" for i in range(len(xs))]
    ny = list(names_y) if names_y is not None else [f"Y[{j}]" for j in range(len(ys))]
    if not xs or not ys:
        raise ConfigError("expected at least one X layer and one Y layer, found none")
    mx = [feature_matrix(x, n) for x, n in zip(xs, nx)]
    my = [feature_matrix(y, n) for y, n in zip(ys, ny)]
    need = 4 if name == "debiased-cka" else 2
    for x in mx:
        check_pair(x, my[0], min_n=need)
    for y in my:
        check_pair(mx[0], y, min_n=need)
    if metric.prepare is None or metric.compare is None:  # linear CKA: one streaming pass
        acc = StreamingCKA(nx, ny)
        acc.update(mx, my)
        return acc.cka(debiased=name == "debiased-cka")
    opts = {**metric.options, **options}
    px = [metric.prepare(x, n, **opts) for x, n in zip(mx, nx)]
    py = [metric.prepare(y, n, **opts) for y, n in zip(my, ny)]
    out = torch.empty(len(px), len(py), dtype=torch.float64)
    for i, a in enumerate(px):
        for j, b in enumerate(py):
            out[i, j] = metric.compare(a, b)
    return out
