r"""The one decomposition the covariance scores share: the SVD of the centred features.

With :math:`X = F - \bar F = U \operatorname{diag}(s) V^\top` (``N x D``), every covariance
:math:`X^\top X / m` has eigenvectors :math:`V` and eigenvalues :math:`s_i^2 / m`, and
:math:`\operatorname{cov}(\mathbb{E}[f \mid y]) = M^\top M` with
:math:`M_c = \sqrt{n_c/(N-1)}\,(\mu_c - \mu)`, whose rows lie in the row space of :math:`X`.
So :math:`\operatorname{tr}(g(X^\top X) M^\top M) = \sum_i g(s_i^2) \lVert M v_i\rVert^2` needs
only :math:`s` and :math:`M V` (``C x k``), from one eigendecomposition of the smaller Gram
matrix (:func:`spectral_probe.spectral.svd`): ``N x N`` when there are more dimensions than
samples, ``D x D`` otherwise.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from ..spectral import svd

__all__ = ["CentredSpectrum", "centred_spectrum"]


class CentredSpectrum(NamedTuple):
    """``s``: singular values of the centred features above the noise floor, descending;
    ``projected``: :math:`\\lVert M v_i\\rVert^2` for each; ``total``: :math:`\\sum_i s_i^2`
    over all of them (the trace of :math:`X^\\top X`); ``row_norms``: :math:`\\lVert x_n\\rVert^2`."""

    s: Tensor
    projected: Tensor
    total: float
    row_norms: Tensor


def centred_spectrum(f: Tensor, y: Tensor, c: int) -> CentredSpectrum:
    """Decompose ``f - mean`` once; keep singular values above :math:`\\sqrt{\\max(N, D)\\,\\epsilon}\\,s_1`.

    That floor is where Gram-based singular values are rounding noise (a centred ``N x D``
    matrix with ``N <= D`` has rank ``N - 1`` at most; its last Gram eigenvalue is
    :math:`\\sim\\epsilon s_1^2`, not 0).
    """
    n, d = f.shape
    mean = f.mean(0)
    x = f - mean
    rtol = (max(n, d) * torch.finfo(x.dtype).eps) ** 0.5
    dec = svd(x, vectors="right", rank_rtol=rtol)
    if dec.V is None:  # pragma: no cover - svd returns the vectors asked for
        raise RuntimeError("svd returned no right singular vectors")
    singular = dec.S
    keep = singular > rtol * singular[0]
    counts = torch.bincount(y, minlength=c).to(x.dtype)
    sums = torch.zeros(c, d, dtype=x.dtype, device=x.device).index_add_(0, y, x)
    m = (sums / counts[:, None]) * (counts / (n - 1)).sqrt()[:, None]  # class means of x: mu_c - mu
    projected = ((m @ dec.V[:, keep]) ** 2).sum(0)
    row_norms = (x**2).sum(1)
    return CentredSpectrum(singular[keep], projected, float(row_norms.sum()), row_norms)
