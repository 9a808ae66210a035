r"""TransRate: coding rate of the features minus their coding rate given the class.

Huang, Huang, Lu, Wang, Gao, Wang. *Frustratingly Easy Transferability Estimation*, ICML 2022
(reference: ``tllib/ranking/transrate.py``).

With the features centred over all samples, :math:`F` (``N x D``), and :math:`F_c` the rows of
class :math:`c` (``n_c`` of them), the coding rate at distortion :math:`\epsilon` is

.. math::

    R(F, \epsilon) = \tfrac12 \log\det\!\Big(I_D + \frac{1}{N\epsilon} F^\top F\Big)
    = \tfrac12 \sum_i \log\!\Big(1 + \frac{s_i^2}{N\epsilon}\Big),

(:math:`s_i` the singular values, from :func:`spectral_probe.spectral.singular_values`, so
each determinant costs the smaller side of the matrix), and

.. math::

    \mathrm{TrR}(F, y) = R(F, \epsilon) - \frac1C \sum_c R(F_c, \epsilon).

Higher is better. Its value depends on the feature scale through :math:`\epsilon`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..errors import ConfigError
from ..spectral import singular_values
from ._check import features_and_labels

__all__ = ["transrate", "coding_rate"]


def coding_rate(f: Tensor, eps: float) -> float:
    r""":math:`\frac12\log\det(I + F^\top F / (n\epsilon))` of a ``(n, D)`` matrix, by its singular values."""
    s = singular_values(f)
    return float(0.5 * torch.log1p(s**2 / (f.shape[0] * eps)).sum())


def transrate(features: Any, labels: Any, eps: float = 1e-4) -> float:
    """TransRate of ``features`` ``(N, D)`` for ``labels`` ``(N,)`` at distortion ``eps``.

    Raises:
        ConfigError: ``eps`` not positive.
        DataError: see :func:`~spectral_probe.transferability._check.features_and_labels`.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> y = torch.arange(60) % 3
        >>> f = torch.randn(60, 8, generator=g) + 3 * torch.nn.functional.one_hot(y, 8)
        >>> transrate(f, y) > transrate(f, y[torch.randperm(60, generator=g)])
        True
    """
    if not eps > 0:
        raise ConfigError(f"expected a distortion eps > 0, found {eps}")
    f, y, c = features_and_labels(features, labels)
    f = f - f.mean(0)
    within = sum(coding_rate(f[y == k], eps) for k in range(c))
    return coding_rate(f, eps) - within / c
