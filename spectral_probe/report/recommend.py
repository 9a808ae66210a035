r"""The recommendation: which regularizer to fine-tune with, from paired pilot runs.

The rule, in order (documented in docs/report.md, validated in docs/validation.md):

1. **Pilot validation accuracy ranks the methods.** Every method is piloted with the same
   seeds, and a seed fixes the training subset, the validation split, the head's
   initialisation and the batch order, so the comparison is **paired**: for the best method
   :math:`b` and each other method :math:`m` the per-seed differences
   :math:`d_s = a_{b,s} - a_{m,s}`, :math:`s = 1..n`, are tested with a one-sided paired
   Student-t test (what ``scipy.stats.ttest_rel`` computes when the floor of step 2 does not
   bind).
2. **A noise floor, for any number of seeds.** A per-seed difference can never be known more
   precisely than the validation split allows: each accuracy is a binomial proportion on
   :math:`n_{val}` images, and seeds move it further. So the per-seed variance of a difference
   is at least

   .. math::

       f_{bm}^2 = 2\,\sigma_{floor}^2
       + \frac{\tilde p_b(1-\tilde p_b) + \tilde p_m(1-\tilde p_m)}{n_{val}},
       \qquad \tilde p = \frac{p\,n_{val} + 1}{n_{val} + 2}

   (:math:`p` the mean accuracy over the shared seeds, pulled off 0 and 1 by Laplace's rule
   so the floor is never zero). :math:`\sigma_{floor}`, the documented seed-sd floor
   :data:`SEED_SD_FLOOR`, stands in for the seed noise only with one seed, where there is no
   spread to measure; with two or more seeds it is 0 and the floor is the validation split's
   binomial noise alone. The rule takes the larger of the measured and the floor variance:

   .. math::

       s_{eff}^2 = \max(s_d^2, f_{bm}^2), \qquad
       SE = s_{eff}/\sqrt n, \qquad t = \bar d / SE

   with :math:`n-1` degrees of freedom; with one seed (no :math:`s_d`) :math:`SE = f_{bm}`
   against the normal distribution. Taking the maximum keeps the t-test valid (it can only
   shrink :math:`t`), and differences without spread no longer give :math:`t = \infty`.
3. **Best of k, and an interval that is the test.** The best method was picked by the same
   data, so each of its :math:`k-1` comparisons is made at the one-sided level
   :math:`\alpha/(k-1)` (Bonferroni). With :math:`q = t_{1-\alpha/(k-1),\,n-1}` each
   comparison shows the interval :math:`[\bar d - q\,SE,\ \bar d + q\,SE]`: its lower end is
   the test's one-sided bound, above zero exactly when :math:`p_{adj} = \min(1, (k-1)\,p)`
   is below :math:`\alpha`, and the best beats :math:`m` exactly then. For a fixed pair each
   end holds with probability :math:`1-\alpha/(k-1)`. Whichever method the data selected,
   the verdict "best" is wrong with probability at most :math:`\alpha`: with probability
   :math:`1-\alpha` the :math:`k-1` lower bounds of the true best all hold, and then no
   other method's lower bound against it can be above zero (the argument of Hsu's multiple
   comparisons with the best, with Bonferroni's critical value in place of Dunnett's; Hsu,
   *Multiple Comparisons*, 1996, ch. 4).
4. **P(best)**, shown, never deciding: the posterior probability that a method has the highest
   mean under a flat prior, the t model of step 2 and the floor. Each method's mean gets
   independent noise of variance :math:`v_i = \max_j SE_{ij}^2/2` scaled by one shared
   :math:`\sqrt{\nu/\chi^2_\nu}` draw (:math:`\nu` the smallest df), so every pairwise
   difference has at least the variance its test uses; with two methods it equals
   :math:`1 - p` of the one-sided test exactly, and under the null it exceeds 0.99 in at
   most about 1% of experiments per method (tests/report/test_recommend_calibration.py).
5. **Outcome.** When every lower bound of step 3 is above zero, the best is recommended:
   confidence **high** with at least three seeds, **medium** otherwise. When one is not, the
   outcome is **"no detectable difference: use DEFAULT"** (confidence low), quoting the
   intervals, where DEFAULT is :data:`DEFAULT_METHOD` (no fixed policy was shown better in the
   validation results, docs/validation.md); when DEFAULT was not piloted, or the pilots show it
   detectably worse than the best, the best pilot is recommended with low confidence instead.
6. **Power**, stated beside the outcome: the probability that the rule finds a true lead of
   1 and 2 points over a runner-up (the others far behind), at the seeds, :math:`\alpha` and
   :math:`k` of the report, when the per-seed noise of the difference is
   :math:`\sqrt{2\sigma_{floor}^2 + \text{binomial}}` (the seed-sd floor taken as the true
   seed noise) and the rule applies its floor of step 2 (:func:`detection_power`).

Spectral signals (feature-spectrum tail energy, top-layer alignment) are measured and shown
but **never** decide: the validation found no evidence that the earlier tie-break thresholds
("tail energy >= 5%" means use BSS; "window alignment < 0.9" means prefer L2 over L2-SP)
predict when BSS or L2-SP helps (not detected either way: on the CPU tasks the gains
themselves were within seed noise; see docs/validation.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ALPHA",
    "DEFAULT_METHOD",
    "MIN_SEEDS_HIGH",
    "POWER_POINTS",
    "SEED_SD_FLOOR",
    "Comparison",
    "PilotScore",
    "Recommendation",
    "SpectralEvidence",
    "detection_power",
    "difference_floor",
    "paired_comparison",
    "prob_best",
    "recommend",
    "score_pilots",
]

Confidence = Literal["high", "medium", "low"]

#: The method used when the pilots cannot tell the candidates apart. Re-derived on 2026-12-07
#: (docs/validation.md): on the paper's Table 2 (``spectral-probe validate --retrospective``)
#: "always DELTA+BSS" has the lowest in-sample regret (0.34 points; L2+BSS 0.60), but chosen
#: leave one dataset out the default loses 0.61 points, level with "always L2+BSS", and paired
#: over the 20 cells DELTA+BSS - L2+BSS is +0.26 points [-0.30, +0.82]; the paper's DELTA runs
#: also used the reference code's mismatched batch-norm source. Rerun here with a consistent
#: source on the five pre-trained CPU tasks, DELTA+BSS - L2+BSS is -0.42 points [-6.97, +6.13]
#: (mean regret 1.97 points against 1.55 for L2+BSS, max 9.8 against 2.3). Not detected
#: either way, so the default is the cheaper of the two: no frozen source network, no
#: attention pass.
DEFAULT_METHOD = "l2+bss"

#: Seed-to-seed standard deviation of one method's accuracy (in [0, 1]) below which the rule
#: never believes the measured spread, for any number of seeds (step 2 of the module
#: docstring): one point, a conservative round figure above the 0.1 to 0.3 points of the
#: paper's five-run standard deviations (Table 2) and about the spread of short CPU pilots.
#: Set it per report with ``--seed-sd-floor``; 0 leaves the binomial floor alone.
SEED_SD_FLOOR = 0.01

#: One-sided level of the corrected comparisons of the best method with the others.
ALPHA = 0.05

#: "high" confidence needs at least this many seeds.
MIN_SEEDS_HIGH = 3

#: True leads (accuracy in [0, 1]) whose detection power the report states: 1 and 2 points.
POWER_POINTS = (0.01, 0.02)

_DRAWS = 20000


def _smoothed(p: float, n_val: int) -> float:
    """Laplace's rule of succession: ``(p n + 1)/(n + 2)``, never 0 or 1."""
    n = max(int(n_val), 1)
    p = min(max(p, 0.0), 1.0)
    return (p * n + 1) / (n + 2)


def _binomial_var(p: float, n_val: int) -> float:
    q = _smoothed(p, n_val)
    return q * (1 - q) / max(int(n_val), 1)


def difference_floor(p_best: float, p_other: float, n_val: int, sd_floor: float) -> float:
    r"""Smallest per-seed standard deviation the rule admits for a difference of accuracies.

    .. math::

        f = \sqrt{2\sigma_{floor}^2
            + (\tilde p_b(1-\tilde p_b) + \tilde p_m(1-\tilde p_m))/n_{val}}

    Args:
        p_best, p_other: mean accuracies in [0, 1].
        n_val: validation images each accuracy was measured on.
        sd_floor: seed-sd floor of one method (:data:`SEED_SD_FLOOR`).

    Example:
        >>> round(difference_floor(0.8, 0.8, 10**9, 0.0), 6)  # binomial alone: sqrt(2*.16/1e9)
        1.8e-05
    """
    return math.sqrt(2 * sd_floor**2 + _binomial_var(p_best, n_val) + _binomial_var(p_other, n_val))


@dataclass(frozen=True)
class PilotScore:
    """Validation accuracy of one method over pilot seeds.

    Attributes:
        method: regularizer spec (``l2``, ``l2+bss``...).
        accuracies: validation accuracy of each seed, in [0, 1].
        n_val: validation examples each accuracy was measured on.
        seeds: the seed of each accuracy (pairs methods); ``0, 1, ...`` when not given.
    """

    method: str
    accuracies: tuple[float, ...]
    n_val: int
    seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.seeds:
            object.__setattr__(self, "seeds", tuple(range(len(self.accuracies))))
        if len(self.seeds) != len(self.accuracies):
            raise ValueError(
                f"expected one seed per accuracy for {self.method!r}, "
                f"found {len(self.seeds)} seeds and {len(self.accuracies)} accuracies"
            )

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (NaN with one seed: nothing measured)."""
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else math.nan

    def se(self, floor: float = SEED_SD_FLOOR) -> float:
        r"""Standard error of the mean, floored like a difference (module docstring, step 2).

        :math:`\sqrt{\max(s^2, f^2)/n}` with :math:`f^2 = \tilde p(1-\tilde p)/n_{val}`; with
        one seed :math:`\sqrt{\sigma_{floor}^2 + f^2}`.
        """
        n = len(self.accuracies)
        f2 = (floor**2 if n == 1 else 0.0) + _binomial_var(self.mean, self.n_val)
        if n > 1:
            return math.sqrt(max(self.std**2, f2) / n)
        return math.sqrt(f2)

    def by_seed(self) -> dict[int, float]:
        return dict(zip(self.seeds, self.accuracies))


@dataclass(frozen=True)
class SpectralEvidence:
    """Spectral signals shown beside the recommendation (``None`` when not measured).

    They do not decide anything (see the module docstring and docs/validation.md).

    Attributes:
        tail_energy: share of the energy :math:`\\sum\\sigma^2` in the smaller half of the
            singular values of the pre-trained model's batch feature matrices on training
            inputs of the target data.
        top_alignment: mean spectral-window alignment of the top layers between the
            pre-trained model and the pilot L2 fine-tune.
    """

    tail_energy: float | None = None
    top_alignment: float | None = None


@dataclass(frozen=True)
class Comparison:
    """The best method against one other, paired over shared seeds.

    Attributes:
        diff: mean of the per-seed differences best - other.
        se: its standard error, floored (module docstring, step 2).
        t: ``diff / se`` (always finite).
        df: degrees of freedom (``inf`` for the one-seed normal reference).
        p: one-sided p-value of "best is not better" (not corrected for best of k).
        n: shared seeds.
        sd: measured standard deviation of the per-seed differences (NaN with one seed).
        floor: the floor :func:`difference_floor` of that standard deviation.
    """

    diff: float
    se: float
    t: float
    df: float
    p: float
    n: int
    sd: float = math.nan
    floor: float = 0.0

    @property
    def floored(self) -> bool:
        """Whether the floor, not the measured spread, set ``se``."""
        return not self.sd >= self.floor

    def bounds(self, level: float) -> tuple[float, float]:
        """``diff -/+ q se`` with ``q`` the one-sided ``1 - level`` quantile of the reference.

        The lower end is above zero exactly when ``p < level``.
        """
        q = _t_ppf(1 - level, self.df)
        return self.diff - q * self.se, self.diff + q * self.se


@dataclass(frozen=True)
class Recommendation:
    """What to fine-tune with, and why.

    Attributes:
        method: the recommended regularizer.
        confidence: ``high``, ``medium`` or ``low``.
        z: paired t statistic of the best over the runner-up, floored (``inf`` alone).
        ranking: one row per method: ``method``, ``mean``, ``std``, ``se`` (floored),
            ``n_seeds``, ``ci_low``, ``ci_high`` (Student-t 95% interval of the mean, clipped to
            [0, 1]),
            ``rank``, ``diff`` (best - method), ``se_diff``, ``sd_floor`` (per-seed floor of
            the difference), ``floored``, ``diff_low``, ``diff_high`` (the interval of step 3:
            lower end = one-sided bound at ``alpha/(k-1)``), ``p`` and ``p_adj`` (one-sided,
            uncorrected and best-of-k corrected), ``tied`` (lower end not above zero: not
            detectably worse than the best), ``p_best`` (step 4).
        reasons: plain-language sentences, in the order the rule applied them.
        outcome: ``best`` (a detectable winner), ``default`` (no detectable difference: the
            default) or ``best-untested`` (no detectable difference, default not usable).
        default: the default method of the rule.
        power: probability of detecting a true lead of each of :data:`POWER_POINTS` (keys in
            points, ``"1"`` and ``"2"``) at this report's seeds, ``alpha`` and ``k``.
        n_seeds: seeds every method has (the fewest).
        level: one-sided level of each comparison, ``alpha/(k-1)``.
        power_sd: per-seed noise of a difference that ``power`` assumes (its floor at the
            best method's accuracy).
    """

    method: str
    confidence: Confidence
    z: float
    ranking: pd.DataFrame
    reasons: list[str] = field(default_factory=list)
    outcome: str = "best"
    default: str = DEFAULT_METHOD
    power: dict[str, float] = field(default_factory=dict)
    n_seeds: int = 0
    level: float = ALPHA
    power_sd: float = math.nan

    def power_text(self) -> str:
        """The power of :attr:`power` in one plain sentence (empty with one method)."""
        if not self.power:
            return ""

        def pct(p: float) -> str:
            return "<1%" if p < 0.01 else (">99%" if p > 0.99 else f"{100 * p:.0f}%")

        leads = " and of ".join(
            f"{pts} point{'s' if pts != '1' else ''} with probability {pct(p)}"
            for pts, p in self.power.items()
        )
        return (
            f"With {self.n_seeds} seed(s) and {len(self.ranking)} methods (each comparison at one-sided level "
            f"{self.level:.3g}), the pilots detect a true lead over the runner-up of {leads}, if the per-seed "
            f"noise of a difference is {100 * self.power_sd:.2f} points (the seed-sd floor per method "
            "plus the validation split's; more noise: less power)."
        )


def score_pilots(
    results: Mapping[str, Sequence[float] | Mapping[int, float]], n_val: int
) -> list[PilotScore]:
    """Group per-seed validation accuracies by method (a list, or a ``seed -> accuracy`` map)."""
    if not results:
        raise ValueError("expected at least one pilot method, found none")
    scores = []
    for method, accs in results.items():
        pairs = list(accs.items()) if isinstance(accs, Mapping) else list(enumerate(accs))
        kept = [(int(s), float(a)) for s, a in pairs if a is not None and math.isfinite(a)]
        if not kept:
            raise ValueError(
                f"expected finite validation accuracies for {method!r}, found {list(pairs)}"
            )
        scores.append(
            PilotScore(method, tuple(a for _, a in kept), n_val, tuple(s for s, _ in kept))
        )
    return scores


def _t_sf(t: float, df: float) -> float:
    from scipy import stats

    if math.isinf(df):
        return float(stats.norm.sf(t))
    return float(stats.t.sf(t, df))


def _t_ppf(q: float, df: float) -> float:
    from scipy import stats

    return float(stats.norm.ppf(q) if math.isinf(df) else stats.t.ppf(q, df))


def paired_comparison(
    best: PilotScore, other: PilotScore, floor: float = SEED_SD_FLOOR
) -> Comparison:
    r"""One-sided paired comparison of ``best`` with ``other`` over their shared seeds.

    With two or more shared seeds, :math:`t = \bar d/(s_{eff}/\sqrt n)`, df :math:`n-1`,
    where :math:`s_{eff} = \max(s_d, f)` and :math:`f` is :func:`difference_floor` (when
    :math:`s_d \ge f` this is ``scipy.stats.ttest_rel(best, other, alternative="greater")``).
    With one, :math:`t = d/f` against the normal distribution.

    Args:
        floor: seed-sd floor of one method, :data:`SEED_SD_FLOOR` (the binomial floor of the
            validation split applies even at 0).

    Raises:
        ValueError: the two methods share no seed.
    """
    a, b = best.by_seed(), other.by_seed()
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError(
            f"expected {best.method} and {other.method} to share pilot seeds, found {sorted(a)} and {sorted(b)}"
        )
    xa, xb = np.array([a[s] for s in shared]), np.array([b[s] for s in shared])
    d = xa - xb
    n = len(d)
    diff = float(d.mean())
    nval = max(min(best.n_val, other.n_val), 1)
    # the seed-sd floor stands in for seed noise only where none is measured (one seed)
    f = difference_floor(float(xa.mean()), float(xb.mean()), nval, floor if n == 1 else 0.0)
    if n > 1:
        sd = float(d.std(ddof=1))
        se, df = max(sd, f) / math.sqrt(n), float(n - 1)
    else:
        sd, se, df = math.nan, f, math.inf
    t = diff / se  # se >= f > 0: the smoothed binomial term is never zero
    return Comparison(diff, se, t, df, _t_sf(t, df), n, sd, f)


def prob_best(
    scores: Sequence[PilotScore],
    floor: float = SEED_SD_FLOOR,
    *,
    draws: int = _DRAWS,
    seed: int = 0,
) -> dict[str, float]:
    r"""Posterior probability that each method has the highest mean (module docstring, step 4).

    Each method's mean :math:`\bar a_i` gets independent normal noise of variance
    :math:`v_i = \max_{j \ne i} SE_{ij}^2/2`, where :math:`SE_{ij}` is the floored standard
    error of the paired comparison of :math:`i` and :math:`j` (:func:`paired_comparison`;
    unpaired :math:`\sqrt{SE_i^2 + SE_j^2}` when they share no seed), divided by one shared
    :math:`\sqrt{\chi^2_\nu/\nu}` draw with :math:`\nu` the smallest df (normal when a pair
    has one seed). Every pairwise difference then has at least the variance of its test, so
    the probability is never more confident than the test; with two methods it is
    :math:`1 - p` of the one-sided test.
    """
    k = len(scores)
    if k == 1:
        return {scores[0].method: 1.0}
    rng = np.random.default_rng(seed)
    v = np.zeros(k)
    dfs = []
    for i in range(k):
        for j in range(i + 1, k):
            try:
                c = paired_comparison(scores[i], scores[j], floor)
                se2, df = c.se**2, c.df
            except ValueError:  # no shared seed: an unpaired standard error
                se2 = scores[i].se(floor) ** 2 + scores[j].se(floor) ** 2
                df = float(min(len(scores[i].accuracies), len(scores[j].accuracies)) - 1)
                df = df if df > 0 else math.inf
            v[i], v[j] = max(v[i], se2 / 2), max(v[j], se2 / 2)
            dfs.append(df)
    nu = min(dfs)
    mu = np.array([s.mean for s in scores])
    z = rng.standard_normal((draws, k)) * np.sqrt(v)
    if math.isfinite(nu):
        z /= np.sqrt(rng.chisquare(nu, size=(draws, 1)) / nu)
    means = mu + z
    top = means.max(axis=1, keepdims=True)
    is_top = means == top
    share = (is_top / is_top.sum(axis=1, keepdims=True)).mean(axis=0)
    return {s.method: float(p) for s, p in zip(scores, share)}


def detection_power(
    delta: float,
    n_seeds: int,
    k: int,
    *,
    alpha: float = ALPHA,
    sd: float,
    floor: float | None = None,
) -> float:
    r"""Probability that the rule detects a true lead ``delta`` over one runner-up.

    The comparison is one-sided at :math:`\alpha/(k-1)`; the other :math:`k-2` methods are
    taken to be far behind (so this is an upper bound for them). With per-seed differences
    :math:`d_s \sim N(\delta, \sigma^2)`, :math:`\sigma` = ``sd``, and the rule's
    :math:`s_{eff} = \max(s_d, f)` (``floor`` :math:`f`, default ``sd``):

    .. math::

        \text{power} = E_{s_d}\Big[\bar\Phi\Big(\frac{q\,\max(s_d, f)/\sqrt n - \delta}
        {\sigma/\sqrt n}\Big)\Big], \qquad
        \frac{(n-1)s_d^2}{\sigma^2} \sim \chi^2_{n-1},
        \quad q = t_{1-\alpha/(k-1),\,n-1}

    integrated over the chi-square law. With ``floor=0`` it is the noncentral-t power
    ``scipy.stats.nct.sf(q, n-1, delta*sqrt(n)/sd)``; with one seed the normal power
    :math:`\bar\Phi(z_{1-\alpha/(k-1)} - \delta/f)` (the rule's one-seed test).

    Example:
        >>> round(detection_power(0.02, 1, 2, sd=0.01), 3)  # z_0.95 = 1.645, 2 sd ahead
        0.639
    """
    from scipy import integrate, stats

    if n_seeds < 1 or k < 2:
        raise ValueError(f"expected n_seeds >= 1 and k >= 2, found {n_seeds} and {k}")
    if not sd > 0:
        raise ValueError(f"expected a positive noise sd, found {sd}")
    f = sd if floor is None else floor
    level = alpha / (k - 1)
    if n_seeds == 1:
        return float(stats.norm.sf(stats.norm.ppf(1 - level) - delta / max(f, 1e-300)))
    n, nu = n_seeds, n_seeds - 1
    q = float(stats.t.ppf(1 - level, nu))
    scale = sd / math.sqrt(n)

    def integrand(x: float) -> float:
        s = sd * math.sqrt(x / nu)
        return float(
            stats.norm.sf((q * max(s, f) / math.sqrt(n) - delta) / scale) * stats.chi2.pdf(x, nu)
        )

    # split where the floor starts to bind, so the quadrature sees the kink
    knot = nu * (f / sd) ** 2
    hi = float(stats.chi2.ppf(1 - 1e-12, nu))
    parts = [(0.0, min(knot, hi)), (min(knot, hi), hi)]
    total = sum(integrate.quad(integrand, lo, up, limit=200)[0] for lo, up in parts if up > lo)
    return float(min(max(total, 0.0), 1.0))


def _terms(method: str) -> int:
    return len(method.split("+"))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _pts(x: float) -> str:
    return f"{100 * x:+.2f}"


def _interval(low: float, high: float) -> str:
    return f"[{_pts(low)}, {_pts(high)}] points"


def recommend(
    scores: Sequence[PilotScore],
    evidence: SpectralEvidence | None = None,
    *,
    alpha: float = ALPHA,
    seed_sd_floor: float = SEED_SD_FLOOR,
    default: str = DEFAULT_METHOD,
) -> Recommendation:
    """Apply the documented rule to pilot scores (``evidence`` is carried, never used)."""
    import pandas as pd

    if not scores:
        raise ValueError("expected at least one pilot score, found none")
    if not 0 < alpha < 1:
        raise ValueError(f"expected alpha in (0, 1), found {alpha}")
    if seed_sd_floor < 0:
        raise ValueError(f"expected a seed-sd floor >= 0, found {seed_sd_floor}")
    del evidence  # shown in the report, not used: see the module docstring
    ordered = sorted(scores, key=lambda s: (-s.mean, _terms(s.method), s.method))
    best = ordered[0]
    k = len(ordered)
    level = alpha / max(k - 1, 1)
    n_min = min(len(s.accuracies) for s in ordered)
    pbest = prob_best(ordered, seed_sd_floor)
    rows = []
    comps: dict[str, Comparison] = {}
    for rank, s in enumerate(ordered, start=1):
        n = len(s.accuracies)
        se = s.se(seed_sd_floor)
        q = _t_ppf(0.975, n - 1 if n > 1 else math.inf)
        row = {
            "method": s.method, "mean": s.mean, "std": s.std, "se": se, "n_seeds": n,
            "ci_low": max(s.mean - q * se, 0.0), "ci_high": min(s.mean + q * se, 1.0), "rank": rank,
            "diff": 0.0, "se_diff": math.nan, "sd_floor": math.nan, "floored": False,
            "diff_low": math.nan, "diff_high": math.nan, "p": math.nan, "p_adj": math.nan,
            "tied": True, "p_best": pbest[s.method],
        }  # fmt: skip
        if s is not best:
            c = paired_comparison(best, s, seed_sd_floor)
            comps[s.method] = c
            low, high = c.bounds(level)
            row.update(
                diff=c.diff,
                se_diff=c.se,
                sd_floor=c.floor,
                floored=c.floored,
                diff_low=low,
                diff_high=high,
                p=c.p,
                p_adj=min(1.0, (k - 1) * c.p),
                tied=not low > 0,  # the decision is the interval's lower end
            )
        rows.append(row)
    ranking = pd.DataFrame(rows)
    # power at the assumed per-seed noise (seed-sd floor + validation noise), with the floor
    # the rule applies at these seeds
    f_best = difference_floor(best.mean, best.mean, best.n_val, seed_sd_floor)
    f_rule = f_best if n_min == 1 else difference_floor(best.mean, best.mean, best.n_val, 0.0)
    power = (
        {
            f"{100 * d:g}": detection_power(d, n_min, k, alpha=alpha, sd=f_best, floor=f_rule)
            for d in POWER_POINTS
        }
        if k > 1
        else {}
    )

    def made(method: str, confidence: Confidence, z: float, outcome: str) -> Recommendation:
        return Recommendation(
            method, confidence, z, ranking, reasons, outcome, default, power, n_min, level, f_best
        )

    if k == 1:
        reasons = [f"only {best.method} was piloted"]
        return made(best.method, "low", math.inf, "best-untested")
    second = ordered[1]
    c2 = comps[second.method]
    spread = (
        f", {int(c2.df)} df"
        + (
            f"; the spread of the differences is below its floor of {100 * c2.floor:.2f} points per seed, "
            "so the floor is used"
            if c2.floored
            else ""
        )
        if math.isfinite(c2.df)
        else f", one seed: per-seed noise floor {100 * c2.floor:.2f} points"
    )
    reasons = [
        f"{best.method} reached the best pilot validation accuracy, {_pct(best.mean)} over "
        f"{len(best.accuracies)} seed(s); runner-up {second.method} {_pct(second.mean)}: a paired margin of "
        f"{100 * c2.diff:.2f} points (t = {c2.t:.2f}{spread}). Posterior probability that {best.method} is "
        f"best: {pbest[best.method]:.2f} (t model with the noise floor; shown, not used)."
    ]
    tied_rows = ranking[ranking["tied"]]
    tied = tied_rows["method"].tolist()
    if len(tied) == 1:
        strict = n_min >= MIN_SEEDS_HIGH
        worst = ranking.iloc[1:].sort_values("diff_low").iloc[0]
        reasons.append(
            f"{best.method} beats each of the other {k - 1} methods at one-sided level {level:.3g} "
            f"(alpha {alpha:g}, best of {k}, Bonferroni): every lower bound of best − method is above zero, "
            f"the smallest {_pts(worst['diff_low'])} points (against {worst['method']}; interval "
            f"{_interval(worst['diff_low'], worst['diff_high'])})"
            + (
                "."
                if strict
                else f"; fewer than {MIN_SEEDS_HIGH} seeds, so the confidence is medium at most."
            )
        )
        return made(best.method, "high" if strict else "medium", c2.t, "best")
    quoted = "; ".join(
        f"{best.method} − {r['method']} in {_interval(r['diff_low'], r['diff_high'])}"
        for _, r in tied_rows.iloc[1:].iterrows()
    )
    reasons.append(
        f"No detectable difference between {', '.join(tied)} (one-sided level {level:.3g}, best of {k}): "
        f"{quoted} (best − method ± q·SE, each end one-sided at level {level:.3g}); not detected is not shown "
        "equal: the intervals are the differences the pilots leave open."
    )
    if default in tied:
        reasons.append(
            f"No detectable difference: use {default}, the default (no fixed policy was shown better in the "
            "validation results, docs/validation.md)."
        )
        return made(default, "low", c2.t, "default")
    if default in ranking["method"].tolist():
        reasons.append(
            f"The default {default} was piloted and is detectably worse than {best.method}: use the best pilot."
        )
    else:
        reasons.append(f"The default {default} was not piloted: use the best pilot, {best.method}.")
    return made(best.method, "low", c2.t, "best-untested")
