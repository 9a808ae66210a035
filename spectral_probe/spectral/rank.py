r"""How many singular values are signal: Marchenko-Pastur edges and Gavish-Donoho thresholds.

For an :math:`m \times n` matrix write :math:`\beta = \min(m, n) / \max(m, n) \in (0, 1]`
(:func:`aspect_ratio`). A pure-noise matrix :math:`Z` with i.i.d. entries of variance
:math:`\sigma^2 / \max(m, n)` has, as :math:`m, n \to \infty` at fixed :math:`\beta`, squared
singular values distributed by the Marchenko-Pastur law of ratio :math:`\beta` and scale
:math:`\sigma^2`,

.. math:: f_\beta(x) = \frac{\sqrt{(\lambda_+ - x)(x - \lambda_-)}}{2\pi\beta\,\sigma^2 x},
   \qquad \lambda_\pm = \sigma^2 (1 \pm \sqrt\beta)^2

(:func:`mp_edges`, :func:`mp_cdf`, :func:`mp_median`), so its singular values fill
:math:`[\sigma(1 - \sqrt\beta), \sigma(1 + \sqrt\beta)]` (:func:`mp_singular_edges`; the upper
end is Spectrum's ``marchenko_pastur_threshold``, Hartford et al. 2024).

Gavish & Donoho (2014, "The optimal hard threshold for singular values is 4/√3") keep the
singular values :math:`y_i` of :math:`Y = X + \sigma Z` above

.. math:: \tau = \lambda_*(\beta)\,\sqrt{\max(m, n)}\,\sigma \quad (\sigma \text{ known}),
   \qquad \tau = \omega(\beta)\, y_{\text{med}} \quad (\sigma \text{ unknown}),

with :math:`Z` of unit-variance entries, :math:`y_{\text{med}}` the median of all
:math:`\min(m, n)` singular values,

.. math:: \lambda_*(\beta) = \sqrt{2(\beta + 1) + \frac{8\beta}{\beta + 1 + \sqrt{\beta^2 + 14\beta + 1}}},
   \qquad \omega(\beta) = \frac{\lambda_*(\beta)}{\sqrt{\mu_\beta}},

and :math:`\mu_\beta` the median of the unit-scale Marchenko-Pastur law. Their approximation
:math:`\omega(\beta) \approx 0.56\beta^3 - 0.95\beta^2 + 1.82\beta + 1.43` is within 0.02 of
the exact form (:func:`gavish_donoho_omega`). For square matrices :math:`\lambda_* = 4/\sqrt3`
and :math:`\omega \approx 2.858`.

Everything here works on spectra (1-D tensors or sequences); nothing decomposes a matrix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError

__all__ = [
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
]

#: a spectrum: a 1-D tensor, array or sequence of singular values
Spectrum = Tensor | np.ndarray | Sequence[float]

_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(96)


def aspect_ratio(shape: Sequence[int]) -> float:
    r""":math:`\beta = \min(m, n) / \max(m, n)` of a matrix shape ``(m, n)``.

    Example:
        >>> aspect_ratio((4096, 11008))
        0.37209302325581395
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ConfigError(f"expected a matrix shape (m, n) with m, n >= 1, found {tuple(shape)}")
    m, n = int(shape[0]), int(shape[1])
    return min(m, n) / max(m, n)


def _check_beta(beta: float) -> float:
    beta = float(beta)
    if not 0.0 < beta <= 1.0:
        raise ConfigError(f"expected an aspect ratio beta in (0, 1], found {beta}")
    return beta


def mp_edges(beta: float, variance: float = 1.0) -> tuple[float, float]:
    r"""Support :math:`[\lambda_-, \lambda_+] = \sigma^2 [(1 - \sqrt\beta)^2, (1 + \sqrt\beta)^2]`
    of the Marchenko-Pastur law (eigenvalues of :math:`Z Z^\top`, entry variance
    :math:`\sigma^2 / \max(m, n)`).

    Example:
        >>> mp_edges(1.0)
        (0.0, 4.0)
    """
    beta = _check_beta(beta)
    root = math.sqrt(beta)
    return variance * (1.0 - root) ** 2, variance * (1.0 + root) ** 2


def mp_singular_edges(beta: float, sigma: float = 1.0) -> tuple[float, float]:
    r"""Singular-value support :math:`[\sigma(1 - \sqrt\beta), \sigma(1 + \sqrt\beta)]` of that noise.

    The upper end is the Marchenko-Pastur bulk edge that Spectrum (Hartford et al. 2024)
    compares singular values against, with :math:`\sigma` estimated from the spectrum itself.
    For i.i.d. entries of standard deviation :math:`s` (unnormalised) pass
    ``sigma = s * sqrt(max(m, n))``: the edge is then :math:`s(\sqrt m + \sqrt n)`.

    Example:
        >>> mp_singular_edges(0.25, 2.0)
        (1.0, 3.0)
    """
    beta = _check_beta(beta)
    root = math.sqrt(beta)
    return sigma * (1.0 - root), sigma * (1.0 + root)


def _mp_mass(beta: float, t_end: np.ndarray) -> np.ndarray:
    r"""Unit-scale MP mass below :math:`x(t) = (1+\beta) - 2\sqrt\beta\cos t` for each ``t_end``.

    With that substitution :math:`\sqrt{(\lambda_+ - x)(x - \lambda_-)} = 2\sqrt\beta\sin t`
    and, writing :math:`s = \sin^2(t/2)`, the integrand becomes the smooth
    :math:`8 s (1 - s) / (\pi (\lambda_- + 4\sqrt\beta s))`, integrated by 96-point
    Gauss-Legendre (exact to rounding for every :math:`\beta \in (0, 1]`).
    """
    lo = (1.0 - math.sqrt(beta)) ** 2
    half = t_end[:, None] / 2.0
    t = half * (_NODES[None, :] + 1.0)
    s = np.sin(t / 2.0) ** 2
    denom = math.pi * (lo + 4.0 * math.sqrt(beta) * s)
    # beta = 1 and t = 0 give 0/0, whose limit is 8 (1 - s) / (4 pi) = 2 / pi
    safe = np.where(denom > 0, denom, 1.0)
    g = np.where(denom > 0, 8.0 * s * (1.0 - s) / safe, 2.0 / math.pi)
    return (g * _WEIGHTS[None, :]).sum(axis=1) * half[:, 0]


def mp_cdf(
    x: float | Sequence[float] | np.ndarray, beta: float, variance: float = 1.0
) -> np.ndarray:
    r""":math:`F_\beta(x) = \int_{\lambda_-}^{x} f_\beta(t)\,dt`, the Marchenko-Pastur CDF (no atom: :math:`\beta \le 1`).

    Example:
        >>> mp_cdf([0.0, 4.0], 1.0).round(12).tolist()
        [0.0, 1.0]
    """
    beta = _check_beta(beta)
    xs = np.atleast_1d(np.asarray(x, dtype=np.float64)) / variance
    root = math.sqrt(beta)
    cos_t = np.clip((1.0 + beta - xs) / (2.0 * root), -1.0, 1.0)
    return np.clip(_mp_mass(beta, np.arccos(cos_t)), 0.0, 1.0)


def mp_median(beta: float) -> float:
    r"""Median :math:`\mu_\beta` of the unit-scale Marchenko-Pastur law: :math:`F_\beta(\mu_\beta) = 1/2`.

    Solved by bisection on the angle :math:`t` of :func:`mp_cdf`'s substitution (60 steps,
    to rounding); Gavish & Donoho's ``MedianMarcenkoPastur`` does the same by numerical
    integration. :math:`\mu_1 \approx 0.6528`.

    Example:
        >>> round(mp_median(1.0), 4)
        0.6528
    """
    beta = _check_beta(beta)
    lo, hi = 0.0, math.pi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if float(_mp_mass(beta, np.array([mid]))[0]) < 0.5:
            lo = mid
        else:
            hi = mid
    t = 0.5 * (lo + hi)
    return (1.0 + beta) - 2.0 * math.sqrt(beta) * math.cos(t)


def gavish_donoho_lambda(beta: float) -> float:
    r""":math:`\lambda_*(\beta)`, the known-noise coefficient: :math:`\tau = \lambda_*(\beta)\sqrt{\max(m,n)}\,\sigma`.

    Example:
        >>> round(gavish_donoho_lambda(1.0), 6) == round(4 / math.sqrt(3), 6)
        True
    """
    beta = _check_beta(beta)
    return math.sqrt(
        2.0 * (beta + 1.0) + 8.0 * beta / (beta + 1.0 + math.sqrt(beta**2 + 14.0 * beta + 1.0))
    )


def gavish_donoho_omega(beta: float, *, exact: bool = True) -> float:
    r""":math:`\omega(\beta)`, the unknown-noise coefficient: :math:`\tau = \omega(\beta)\,y_{\text{med}}`.

    Args:
        beta: aspect ratio in ``(0, 1]``.
        exact: :math:`\lambda_*(\beta) / \sqrt{\mu_\beta}` with the Marchenko-Pastur median
            (default), or else the paper's fit :math:`0.56\beta^3 - 0.95\beta^2 + 1.82\beta + 1.43`.

    Example:
        >>> round(gavish_donoho_omega(1.0), 3), round(gavish_donoho_omega(1.0, exact=False), 3)
        (2.858, 2.86)
    """
    beta = _check_beta(beta)
    if not exact:
        return 0.56 * beta**3 - 0.95 * beta**2 + 1.82 * beta + 1.43
    return gavish_donoho_lambda(beta) / math.sqrt(mp_median(beta))


def _spectrum(s: Spectrum, shape: Sequence[int]) -> tuple[np.ndarray, int, int]:
    values = (
        s.detach().to("cpu", torch.float64).numpy()
        if isinstance(s, Tensor)
        else np.asarray(s, dtype=np.float64)
    )
    if values.ndim != 1:
        raise ConfigError(f"expected a 1-D spectrum, found shape {tuple(values.shape)}")
    aspect_ratio(shape)
    m, n = int(shape[0]), int(shape[1])
    if values.size > min(m, n):
        raise ConfigError(
            f"expected at most min(m, n) = {min(m, n)} singular values for shape {(m, n)}, "
            f"found {values.size}"
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError("expected finite non-negative singular values, found NaN, Inf or < 0")
    return values, m, n


def gavish_donoho_threshold(
    s: Spectrum,
    shape: Sequence[int],
    *,
    sigma: float | None = None,
    exact: bool = True,
) -> float:
    r"""Gavish-Donoho's optimal hard threshold :math:`\tau` for the singular values ``s``.

    Args:
        s: singular values of the ``shape`` matrix (any order). Fewer than
            :math:`\min(m, n)` may be given: the missing ones are zero (exact for a low-rank
            update given by its factors).
        shape: ``(m, n)``.
        sigma: the noise level per entry when known: :math:`\tau = \lambda_*(\beta)\sqrt{\max(m,n)}\,\sigma`.
            ``None`` (default): :math:`\tau = \omega(\beta)\,y_{\text{med}}`, the median over
            all :math:`\min(m, n)` values.
        exact: with unknown noise, :math:`\omega` from the exact Marchenko-Pastur median
            (default) or the cubic approximation.

    Example:
        >>> gavish_donoho_threshold([1.0, 1.0], (2, 2), sigma=0.0)
        0.0
    """
    values, m, n = _spectrum(s, shape)
    beta = aspect_ratio((m, n))
    if sigma is not None:
        if not (math.isfinite(sigma) and sigma >= 0):
            raise ConfigError(f"expected a noise level sigma >= 0, found {sigma}")
        return gavish_donoho_lambda(beta) * math.sqrt(max(m, n)) * float(sigma)
    full = np.zeros(min(m, n))
    full[: values.size] = values
    return gavish_donoho_omega(beta, exact=exact) * float(np.median(full))


def gavish_donoho_rank(
    s: Spectrum,
    shape: Sequence[int],
    *,
    sigma: float | None = None,
    exact: bool = True,
    rtol: float | None = None,
) -> int:
    r"""Number of singular values above :func:`gavish_donoho_threshold` (and above rounding).

    A value counts when :math:`\sigma_i > \max(\tau, \text{rtol}\,\sigma_1)`; ``rtol`` defaults
    to :math:`\max(m, n)\,\epsilon_{64}`, so a spectrum whose median is zero (an update of rank
    below :math:`\min(m, n)/2`) gives its numerical rank, and a zero matrix gives 0.

    Example:
        >>> gavish_donoho_rank([10.0, 1.0, 1.0, 1.0], (4, 4))
        1
    """
    values, m, n = _spectrum(s, shape)
    tau = gavish_donoho_threshold(values, (m, n), sigma=sigma, exact=exact)
    if values.size == 0 or float(values.max()) == 0.0:
        return 0
    tol = max(m, n) * float(np.finfo(np.float64).eps) if rtol is None else float(rtol)
    return int(np.count_nonzero(values > max(tau, tol * float(values.max()))))


def energy_rank(s: Spectrum, fraction: float) -> int:
    r"""Smallest :math:`k` with :math:`\sum_{i \le k} \sigma_i^2 \ge` ``fraction`` :math:`\sum_i \sigma_i^2`.

    The values are sorted descending first; a zero spectrum has rank 0.

    Example:
        >>> energy_rank([3.0, 1.0, 1.0], 0.9)
        2
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"expected an energy fraction in (0, 1], found {fraction}")
    values = (
        s.detach().to("cpu", torch.float64).numpy()
        if isinstance(s, Tensor)
        else np.asarray(s, dtype=np.float64)
    )
    energy = np.sort(values.ravel() ** 2)[::-1]
    total = float(energy.sum())
    if energy.size == 0 or total == 0.0:
        return 0
    cumulative = np.cumsum(energy) / total
    # tolerate rounding in the cumulative sum at fraction = 1
    position = int(np.searchsorted(cumulative, fraction * (1 - 1e-12), side="left"))
    return min(position + 1, int(energy.size))
