"""Heavy-tailed metrics of a layer's empirical spectral density (ESD), as WeightWatcher computes them.

The ESD of a weight matrix :math:`W \\in \\mathbb{R}^{m \\times n}` is the set of eigenvalues
:math:`\\lambda_i = \\sigma_i^2` of :math:`W^\\top W` (the squared singular values,
:math:`\\min(m, n)` of them). Heavy-tailed self-regularisation (Martin & Mahoney, 2021) fits a
power law :math:`p(\\lambda) \\propto \\lambda^{-\\alpha}` to the tail
:math:`\\lambda \\ge \\lambda_{\\min}` and reads :math:`\\alpha` as a training-quality indicator:
:math:`2 \\le \\alpha \\le 6` is typical of well-trained layers, :math:`\\alpha < 2` is flagged
*over-trained*, :math:`\\alpha > 6` *under-trained*.

The fit (:func:`fit_power_law`) is the Clauset-Shalizi-Newman (2009) method exactly as
WeightWatcher 0.7.x runs it (its default ``pl_package="ww"``, ``WW_powerlaw.WWFit``):

* eigenvalues :math:`\\le 10^{-5}` (an absolute threshold, WeightWatcher's ``EVALS_THRESH``) are
  dropped; every remaining eigenvalue but the largest is a candidate :math:`x_{\\min}` (no
  ``xmin`` search range and no ``xmax``: WeightWatcher's defaults);
* for each candidate, the continuous maximum-likelihood exponent on the :math:`n` eigenvalues
  :math:`x_j \\ge x_{\\min}`,

  .. math:: \\hat\\alpha = 1 + \\frac{n}{\\sum_j \\ln(x_j / x_{\\min})},

  and the distance :math:`\\max_k |F(x_{(k)}) - k/n|` between the fitted CDF
  :math:`F(x) = 1 - (x / x_{\\min})^{1 - \\hat\\alpha}` and the empirical CDF taken at the lower
  step (:math:`k = 0, \\dots, n - 1`, as WeightWatcher and the ``powerlaw`` package do);
  :math:`x_{\\min}` minimises that distance;
* with fewer than 20 eigenvalues WeightWatcher switches to its small-sample branch: the
  bias-corrected :math:`\\hat\\alpha = 1 + (n - 1) / \\sum_j \\ln(x_j / x_{\\min})` on tails of at
  least 8 eigenvalues (its objective :math:`D - 0.868/\\sqrt{n}` is computed but then overridden
  by the minimal distance in ``WWFit.__init__``; we reproduce what it returns, the minimal
  distance). We do the same (no bias correction from 20 eigenvalues on, as WeightWatcher), so
  :math:`\\alpha` matches ``WeightWatcher().analyze()`` on the same eigenvalues.

Where we differ, and why:

* **The reported D** is the exact two-sided Kolmogorov-Smirnov statistic of the tail against the
  fitted law (what ``scipy.stats.kstest`` returns); WeightWatcher reports the lower-step
  distance used for the selection above, which can be smaller by up to :math:`1/n`. The
  selection itself uses WeightWatcher's distance, so :math:`\\alpha` and :math:`x_{\\min}` agree.
* **Too few eigenvalues.** Fewer than :data:`MIN_EIGENVALUES` (8, WeightWatcher's
  ``min_evals``) eigenvalues above the threshold, or a tail of equal values, give
  :math:`\\alpha` = NaN with a reason string. WeightWatcher skips layers whose smaller side is
  below 8 but fits rank-deficient ones on whatever is left; we count the eigenvalues actually
  fitted.
* **The candidates are vectorised** (blocks of a candidates-by-eigenvalues array) instead of
  WeightWatcher's Python loop over eigenvalues; the arithmetic is the same.
* **Convolutions**: by default the unfolded matrix :math:`(c_{out}, c_{in} k_h k_w)` of the rest
  of this toolkit (:func:`eigenvalues`). WeightWatcher instead pools the eigenvalues of the
  :math:`k_h k_w` per-kernel-position slices :math:`W[:, :, i, j]` and scales them by 1/2 (its
  ``conv2d_norm``); :func:`conv_slice_eigenvalues` reproduces that (``--esd-conv slices``). The
  two conventions give different :math:`\\alpha` for the same layer.

The Marchenko-Pastur fit (:func:`mp_fit`) is WeightWatcher's ``mp_fit``: eigenvalues rescaled to
unit mean, a linear-kernel density estimate (bandwidth 0.1) on 1,000 points, and the
:math:`\\sigma` whose MP density best matches it (least squares over a grid, then Nelder-Mead),
giving the bulk edge :math:`\\lambda_+ = \\sigma^2 (1 + 1/\\sqrt{Q})^2` with :math:`Q = N / M \\ge 1`
and the soft rank :math:`\\lambda_+ / \\lambda_{\\max}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .svd import singular_values

__all__ = [
    "EVALS_THRESHOLD",
    "MIN_EIGENVALUES",
    "OVER_TRAINED",
    "UNDER_TRAINED",
    "MPFit",
    "PowerLawFit",
    "conv_slice_eigenvalues",
    "eigenvalues",
    "esd_metrics",
    "fit_power_law",
    "ks_distance",
    "mp_fit",
    "trained_warning",
]

MIN_EIGENVALUES = 8
"""Fewest eigenvalues (above :data:`EVALS_THRESHOLD`) a power law is fitted to (WeightWatcher's ``min_evals``)."""
EVALS_THRESHOLD = 1e-5
"""Eigenvalues at or below this are left out of the fit (WeightWatcher's ``EVALS_THRESH``)."""
SMALL_N = 20
"""Below this many eigenvalues the small-sample branch runs (WeightWatcher's ``SMALL_N_CUTOFF``)."""
SMALL_N_MIN_TAIL = 8
OVER_TRAINED = 2.0
"""``alpha`` below this: WeightWatcher's *over-trained* warning."""
UNDER_TRAINED = 6.0
"""``alpha`` above this: WeightWatcher's *under-trained* warning."""

_BLOCK = 1 << 22  # entries of one candidates-by-eigenvalues block (32 MiB of float64)


@dataclass(frozen=True)
class PowerLawFit:
    """A power law fitted to the tail of an ESD.

    Attributes:
        alpha: the exponent :math:`\\hat\\alpha` (NaN when not fitted).
        xmin: the start of the tail :math:`\\lambda_{\\min}` (NaN when not fitted).
        D: Kolmogorov-Smirnov statistic of the tail against the fitted law.
        n_tail: number of eigenvalues :math:`\\ge x_{\\min}` (0 when not fitted).
        sigma: standard error :math:`(\\hat\\alpha - 1)/\\sqrt{n}`.
        reason: why ``alpha`` is missing; ``None`` when it was fitted.
    """

    alpha: float
    xmin: float
    D: float
    n_tail: int
    sigma: float
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class MPFit:
    """A Marchenko-Pastur fit of the bulk (eigenvalues rescaled to unit mean).

    Attributes:
        sigma: the fitted MP scale :math:`\\sigma`.
        bulk_max: bulk edge :math:`\\lambda_+ = \\sigma^2 (1 + 1/\\sqrt{Q})^2` (rescaled units).
        bulk_min: :math:`\\lambda_- = \\sigma^2 (1 - 1/\\sqrt{Q})^2`.
        softrank: :math:`\\lambda_+ / \\lambda_{\\max}` (near 1 for a random matrix).
        num_spikes: eigenvalues beyond the bulk edge plus its Tracy-Widom allowance.
        scale: the factor :math:`c` the eigenvalues were multiplied by (:math:`c \\lambda`
            has unit mean); :math:`\\lambda_+ / c` is the edge in the original units.
        reason: why the fit is missing; ``None`` when it ran.
    """

    sigma: float
    bulk_max: float
    bulk_min: float
    softrank: float
    num_spikes: int
    scale: float
    reason: str | None = None


def _missing(reason: str) -> PowerLawFit:
    return PowerLawFit(math.nan, math.nan, math.nan, 0, math.nan, reason)


def _as_array(evals: Tensor | np.ndarray | Any) -> np.ndarray:
    if isinstance(evals, Tensor):
        evals = evals.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(evals, dtype=np.float64).ravel()
    if not np.all(np.isfinite(x)):
        raise ValueError("expected finite eigenvalues, found NaN or Inf")
    return x


def eigenvalues(matrix: Tensor) -> Tensor:
    """The ESD of a matrix: :math:`\\lambda_i = \\sigma_i^2`, ascending, float64.

    Args:
        matrix: ``(m, n)``; a conv weight must be unfolded first
            (:func:`spectral_probe.spectral.unfold_weight`).

    Example:
        >>> eigenvalues(torch.diag(torch.tensor([1.0, 3.0, 2.0]))).tolist()
        [1.0, 4.0, 9.0]
    """
    return singular_values(matrix).square().flip(0)


def conv_slice_eigenvalues(weight: Tensor, *, conv2d_norm: bool = True) -> Tensor:
    """WeightWatcher's convolution ESD: pooled eigenvalues of the per-kernel-position slices.

    For a weight ``(c_out, c_in, *kernel)`` each of the :math:`\\prod_j k_j` slices
    :math:`W[:, :, i, j] \\in \\mathbb{R}^{c_{out} \\times c_{in}}` contributes its
    :math:`\\min(c_{out}, c_{in})` eigenvalues; with ``conv2d_norm`` they are multiplied by 1/2, as
    WeightWatcher's default ``conv2d_norm=True`` scales each slice by :math:`\\sqrt{1/2}` when
    pooling. WeightWatcher does this for Conv2d; we apply the same rule to 1-D and 3-D kernels.

    Returns:
        ``(prod(kernel) * min(c_out, c_in),)`` eigenvalues, ascending, float64.

    Example:
        >>> conv_slice_eigenvalues(torch.ones(4, 2, 3, 3), conv2d_norm=False).numel()
        18
    """
    if weight.ndim < 3:
        raise ValueError(
            f"expected a convolution weight (c_out, c_in, *kernel), found shape {tuple(weight.shape)}"
        )
    w = weight.detach().to(torch.float64)
    c_out, c_in = w.shape[:2]
    slices = w.reshape(c_out, c_in, -1).permute(2, 0, 1)  # (positions, c_out, c_in)
    gram = slices @ slices.mT if c_out <= c_in else slices.mT @ slices
    lam = torch.linalg.eigvalsh(gram).clamp_min(0).reshape(-1)
    if conv2d_norm:
        lam = lam * 0.5
    ordered: Tensor = lam.sort().values
    return ordered


def trained_warning(alpha: float) -> str:
    """WeightWatcher's per-layer warning: ``over-trained`` (:math:`\\alpha < 2`), ``under-trained`` (> 6), or ``""``."""
    if math.isnan(alpha):
        return ""
    if alpha < OVER_TRAINED:
        return "over-trained"
    if alpha > UNDER_TRAINED:
        return "under-trained"
    return ""


def ks_distance(tail: np.ndarray | Tensor, alpha: float, xmin: float) -> float:
    """Two-sided Kolmogorov-Smirnov statistic of ``tail`` against the power law ``(alpha, xmin)``.

    .. math:: D = \\max_k \\max\\left(\\tfrac{k+1}{n} - F(x_{(k)}),\\; F(x_{(k)}) - \\tfrac{k}{n}\\right),
        \\quad F(x) = 1 - (x / x_{\\min})^{1 - \\alpha}

    (``scipy.stats.kstest(tail, F).statistic``).

    Example:
        >>> round(ks_distance([1.0, 2.0, 4.0], 2.0, 1.0), 4)
        0.3333
    """
    x = np.sort(_as_array(tail))
    n = x.size
    if n == 0:
        return math.nan
    cdf = 1.0 - np.power(x / xmin, 1.0 - alpha)
    k = np.arange(n, dtype=np.float64)
    return float(max(np.max((k + 1) / n - cdf), np.max(cdf - k / n)))


def _lower_step_distances(
    x: np.ndarray, logx: np.ndarray, alphas: np.ndarray, first: int, last: int
) -> np.ndarray:
    """WeightWatcher's selection distance for candidates ``first..last-1``, in blocks.

    For candidate :math:`i` with :math:`n_i = N - i`: :math:`\\max_{k<n_i} |1 - (x_{i+k}/x_i)^{1-\\alpha_i} - k/n_i|`.
    """
    size = x.size
    out = np.ones(last - first)
    rows = max(1, _BLOCK // max(size, 1))
    j = np.arange(size)
    for start in range(first, last, rows):
        stop = min(start + rows, last)
        i = np.arange(start, stop)
        a = alphas[i]
        k = j[None, :] - i[:, None]
        valid = k >= 0
        n = (size - i)[:, None].astype(np.float64)
        ratio = x[None, :] / x[i, None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            diff = np.abs(1.0 - np.power(ratio, 1.0 - a[:, None]) - k / n)
        diff = np.where(valid, diff, 0.0)
        d = np.max(diff, axis=1)
        out[start - first : stop - first] = np.where(a > 1.0, d, 1.0)
    return out


def fit_power_law(
    evals: np.ndarray | Tensor,
    *,
    threshold: float = EVALS_THRESHOLD,
    min_eigenvalues: int = MIN_EIGENVALUES,
) -> PowerLawFit:
    """Fit a power law to the tail of an ESD, choosing :math:`x_{\\min}` by the KS distance.

    See the module docstring for the method (WeightWatcher 0.7.x's) and where the reported
    ``D`` differs from WeightWatcher's.

    Args:
        evals: eigenvalues :math:`\\lambda_i = \\sigma_i^2`, any order.
        threshold: eigenvalues at or below it are left out.
        min_eigenvalues: fewer eigenvalues than this above ``threshold`` give a missing fit.

    Returns:
        :class:`PowerLawFit`; ``alpha`` is NaN with a ``reason`` when it cannot be fitted.

    Example:
        >>> x = (1.0 - (np.arange(1000) + 0.5) / 1000) ** (-1 / 2.0)  # Pareto quantiles, alpha = 3
        >>> round(fit_power_law(x).alpha, 1)
        3.0
    """
    x = np.sort(_as_array(evals))
    x = x[x > threshold]
    size = x.size
    if size < max(min_eigenvalues, 2):
        return _missing(
            f"{size} eigenvalue(s) above {threshold:g}, fewer than {max(min_eigenvalues, 2)}"
        )
    if x[0] == x[-1]:
        return _missing(f"all {size} eigenvalues above {threshold:g} are equal")
    logx = np.log(x)
    tail_sum = np.cumsum(logx[::-1])[::-1]
    i = np.arange(size - 1)
    n = (size - i).astype(np.float64)
    s = tail_sum[:-1] - n * logx[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        if size >= SMALL_N:
            alphas = 1.0 + n / s
            ds = _lower_step_distances(x, logx, alphas, 0, size - 1)
            best = int(np.argmin(ds))
        else:
            alphas = 1.0 + (n - 1.0) / s
            usable = (n >= SMALL_N_MIN_TAIL) & (s > 1e-12) & (alphas > 1.0)
            if not usable.any():
                return _missing(
                    f"no tail of {SMALL_N_MIN_TAIL} or more distinct eigenvalues to fit"
                )
            ds = _lower_step_distances(x, logx, np.where(usable, alphas, 0.0), 0, size - 1)
            best = int(np.argmin(ds))
    alpha = float(alphas[best])
    if not math.isfinite(alpha) or alpha <= 1.0:
        return _missing(f"the tail above {x[best]:.3g} is degenerate (equal eigenvalues)")
    xmin = float(x[best])
    tail = x[x >= xmin]
    n_tail = int(tail.size)
    sigma = (alpha - 1.0) / math.sqrt(size - best)
    return PowerLawFit(alpha, xmin, ks_distance(tail, alpha, xmin), n_tail, sigma)


def _kde_linear(points: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Linear-kernel density estimate :math:`\\frac{1}{nh}\\sum_i \\max(0, 1 - |x - x_i|/h)` (scikit-learn's ``linear``)."""
    out = np.empty(grid.size)
    rows = max(1, _BLOCK // max(points.size, 1))
    for start in range(0, grid.size, rows):
        g = grid[start : start + rows, None]
        out[start : start + rows] = np.clip(
            1.0 - np.abs(g - points[None, :]) / bandwidth, 0.0, None
        ).sum(axis=1)
    return out / (points.size * bandwidth)


def _mp_cost(sigma: np.ndarray | float, xde: np.ndarray, yde: np.ndarray, q: float) -> float:
    """WeightWatcher's ``resid_mp``: squared distance between the MP density and the estimate."""
    sig = float(np.atleast_1d(sigma)[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        if q == 1.0:
            ymp = np.nan_to_num((1 / (np.pi * sig * sig)) * np.sqrt(4 - xde**2))
        else:
            b = (sig * (1 + np.sqrt(1 / q))) ** 2
            a = (sig * (1 - np.sqrt(1 / q))) ** 2
            peak = xde[np.argmax(yde)]
            if b < peak or b > xde.max() or a > peak:
                return float(len(yde) * 1000.0**2)
            ymp = np.nan_to_num(
                (1 / (2 * np.pi * sig * sig * xde / q)) * np.sqrt((b - xde) * (xde - a))
            )
    return float(np.sum((ymp - yde) ** 2))


def _mp_costs(sigmas: np.ndarray, xde: np.ndarray, yde: np.ndarray, q: float) -> np.ndarray:
    """:func:`_mp_cost` for many ``sigmas`` at once (one row each)."""
    sig = sigmas[:, None]
    x = xde[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        if q == 1.0:
            ymp = np.nan_to_num((1 / (np.pi * sig * sig)) * np.sqrt(4 - x**2))
            circle: np.ndarray = np.sum((ymp - yde) ** 2, axis=1)
            return circle
        b = (sig * (1 + np.sqrt(1 / q))) ** 2
        a = (sig * (1 - np.sqrt(1 / q))) ** 2
        ymp = np.nan_to_num((1 / (2 * np.pi * sig * sig * x / q)) * np.sqrt((b - x) * (x - a)))
    cost = np.sum((ymp - yde) ** 2, axis=1)
    peak = xde[np.argmax(yde)]
    bad = (b[:, 0] < peak) | (b[:, 0] > xde.max()) | (a[:, 0] > peak)
    return np.where(bad, len(yde) * 1000.0**2, cost)


def mp_fit(evals: np.ndarray | Tensor, rows: int, cols: int, *, bandwidth: float = 0.1) -> MPFit:
    """Fit the Marchenko-Pastur law to the bulk of an ESD (WeightWatcher's ``mp_fit``).

    With :math:`N \\ge M` the sides of the matrix and :math:`Q = N / M`: the eigenvalues are
    rescaled to unit mean (:math:`c = \\#\\lambda / \\sum \\lambda`); a linear-kernel density
    estimate of them (of their square roots when :math:`Q = 1`, against the quarter circle) on
    1,000 points of :math:`[0, \\max + 0.5]`, keeping points with density above 0.01, is matched
    by the MP density of scale :math:`\\sigma` in least squares, first on the grid
    :math:`\\sigma \\in [0.05 s_0, 2 s_0)` in steps of :math:`0.01 s_0` with
    :math:`s_0 = \\sqrt{\\lambda_{\\max}} / (1 + Q^{-1/2})`, then by Nelder-Mead
    (``scipy.optimize.brute``); candidates whose edges fall outside the estimate are penalised
    as in WeightWatcher (the grid is evaluated at once here rather than one call per point).
    Then :math:`\\lambda_\\pm = \\sigma^2 (1 \\pm Q^{-1/2})^2`, the soft rank
    :math:`\\lambda_+ / \\lambda_{\\max}` and the spikes beyond
    :math:`\\lambda_+ + \\sqrt{Q^{-1/2} \\lambda_+^{2/3} M^{-2/3}}` (Tracy-Widom allowance).

    Args:
        evals: all eigenvalues of the layer (zeros included).
        rows: rows of the matrix.
        cols: columns of the matrix.
        bandwidth: of the density estimate, in rescaled units.
    """
    from scipy import optimize

    x = _as_array(evals)
    total = float(x.sum())
    if x.size < 2 or total <= 0.0 or float(x.max()) == float(x.min()):
        return MPFit(
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            0,
            math.nan,
            "a degenerate spectrum (all eigenvalues equal or zero)",
        )
    big, small = max(rows, cols), min(rows, cols)
    q = big / small
    scale = x.size / total
    x = x * scale
    lam_max = float(x.max())
    s0 = math.sqrt(lam_max / (1.0 + 1.0 / math.sqrt(q)) ** 2)
    to_fit = np.sqrt(x) if q == 1.0 else x
    xde = np.linspace(0, float(to_fit.max()) + 0.5, 1000)
    yde = _kde_linear(to_fit, xde, bandwidth)
    keep = yde > 0.01
    xde, yde = xde[keep], yde[keep]
    grid = np.mgrid[slice(0.05 * s0, 2.0 * s0, 0.01 * s0)]
    start = grid[int(np.argmin(_mp_costs(grid, xde, yde, q)))]  # scipy.optimize.brute's grid step
    polished = optimize.fmin(
        _mp_cost, np.array([start]), args=(xde, yde, q), full_output=True, disp=False
    )
    sigma = float(polished[0][0])
    bulk_max = (sigma * (1 + 1 / math.sqrt(q))) ** 2
    bulk_min = (sigma * (1 - 1 / math.sqrt(q))) ** 2
    tw = 1 / math.sqrt(q) * bulk_max ** (2 / 3) * small ** (-2 / 3)
    spikes = int(np.sum(x > bulk_max + math.sqrt(tw)))
    return MPFit(sigma, bulk_max, bulk_min, bulk_max / lam_max, spikes, scale)


def esd_metrics(
    evals: np.ndarray | Tensor,
    rows: int,
    cols: int,
    *,
    mp: bool = True,
    threshold: float = EVALS_THRESHOLD,
    min_eigenvalues: int = MIN_EIGENVALUES,
) -> dict[str, Any]:
    """Every per-layer ESD metric, as one flat dict (WeightWatcher's names where it has one).

    * ``alpha``, ``xmin``, ``D``, ``n_tail``, ``alpha_sigma``: :func:`fit_power_law`;
      ``alpha_reason`` says why ``alpha`` is missing (empty when fitted);
    * ``alpha_hat`` :math:`= \\alpha \\log_{10} \\lambda_{\\max}` (WeightWatcher's ``alpha_weighted``);
    * ``log_spectral_norm`` :math:`= \\log_{10} \\lambda_{\\max} = 2 \\log_{10} \\|W\\|_2`;
    * ``log_norm`` :math:`= \\log_{10} \\sum_i \\lambda_i = 2 \\log_{10} \\|W\\|_F` (WeightWatcher's
      ``log_norm``; the log Frobenius norm squared);
    * ``stable_rank`` :math:`= \\sum_i \\lambda_i / \\lambda_{\\max}`;
    * ``mp_softrank``, ``bulk_max``, ``mp_sigma``, ``num_spikes``: :func:`mp_fit` (bulk edge in
      the original units);
    * ``warning``: :func:`trained_warning`.

    Norms of a zero matrix are NaN and ``alpha_reason`` says so.

    Example:
        >>> m = esd_metrics(np.array([0.0, 0.0]), 2, 2, mp=False)
        >>> m["alpha"] != m["alpha"], m["alpha_reason"]
        (True, 'a zero matrix')
    """
    x = _as_array(evals)
    nan = math.nan
    lam_max = float(x.max()) if x.size else 0.0
    total = float(x.sum())
    row: dict[str, Any] = {"n_evals": int(x.size), "lambda_max": lam_max if lam_max > 0 else nan}
    if lam_max <= 0.0:
        fit = _missing("a zero matrix")
    else:
        fit = fit_power_law(x, threshold=threshold, min_eigenvalues=min_eigenvalues)
    row.update(
        alpha=fit.alpha,
        alpha_reason=fit.reason or "",
        xmin=fit.xmin,
        D=fit.D,
        n_tail=fit.n_tail,
        alpha_sigma=fit.sigma,
        log_spectral_norm=math.log10(lam_max) if lam_max > 0 else nan,
        log_norm=math.log10(total) if total > 0 else nan,
        stable_rank=total / lam_max if lam_max > 0 else nan,
    )
    row["alpha_hat"] = fit.alpha * row["log_spectral_norm"] if fit.ok else nan
    if mp:
        mpf = mp_fit(x, rows, cols)
        row.update(
            mp_softrank=mpf.softrank,
            bulk_max=mpf.bulk_max / mpf.scale if mpf.reason is None else nan,
            mp_sigma=mpf.sigma,
            num_spikes=mpf.num_spikes,
        )
    row["warning"] = trained_warning(fit.alpha)
    return row
