"""The recommendation: which regularizer to fine-tune with, from paired pilot runs.

The rule, in order (documented in docs/report.md, validated in docs/validation.md):

1. **Pilot validation accuracy ranks the methods.** Every method is piloted with the same
   seeds, and a seed fixes the training subset, the validation split, the head's
   initialisation and the batch order, so the comparison is **paired**: for the best method
   :math:`b` and each other method :math:`m` the per-seed differences
   :math:`d_s = a_{b,s} - a_{m,s}` are tested with a one-sided paired Student-t test,
   :math:`t = \\bar d / (s_d/\\sqrt{n})` with :math:`n-1` degrees of freedom (what
   ``scipy.stats.ttest_rel`` computes).
2. **One seed has no spread to measure**, so a documented floor stands in for it: the
   difference of one seed has standard error
   :math:`\\sqrt{2\\,\\sigma_{floor}^2 + (p_b(1-p_b) + p_m(1-p_m))/n_{val}}` (seed noise of
   both runs plus binomial noise of the validation set), judged against the normal
   distribution.
3. **Best of k.** The best method was picked by the same data, so its :math:`k-1`
   comparisons are Bonferroni-corrected (:math:`p_{adj} = \\min(1, (k-1)\\,p)`), a
   conservative stand-in for Hsu's multiple comparisons with the best. Each candidate also
   gets ``p_best``, the probability that it is best: the share of 4000 Bayesian-bootstrap
   redraws of the seeds (Dirichlet(1, ..., 1) weights shared by all methods, so pairing is
   kept) in which it has the highest weighted mean; with one seed, of draws of independent
   normal noise with the standard error of step 2.
4. **Outcome.** When the best method beats every other one at level ``alpha`` after the
   correction, it is recommended: confidence **high** with at least three seeds, **medium**
   otherwise. When it does not, the outcome is **"no detectable difference: use DEFAULT"**
   (confidence low), where DEFAULT is the fixed policy with the lowest regret in the
   validation results (:data:`DEFAULT_METHOD`); when DEFAULT was not piloted, or the pilots
   show it significantly worse than the best, the best pilot is recommended with low
   confidence instead.

Spectral signals (feature-spectrum tail energy, top-layer alignment) are measured and shown
but **never** decide: the validation found no evidence that the earlier tie-break thresholds
("tail energy >= 5%" means use BSS; "window alignment < 0.9" means prefer L2 over L2-SP)
predict when BSS or L2-SP helps. On the CPU suite those rules lost 5.6 and 5.9 points on
average, and no signal's Kendall tau with the gains was distinguishable from zero (see
docs/validation.md).
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
    "SEED_SD_FLOOR",
    "Comparison",
    "PilotScore",
    "Recommendation",
    "SpectralEvidence",
    "paired_comparison",
    "prob_best",
    "recommend",
    "score_pilots",
]

Confidence = Literal["high", "medium", "low"]

#: The method used when the pilots cannot tell the candidates apart: the fixed policy with the
#: lowest mean regret in the validation results, both of which agree. On the paper's Table 2
#: (``spectral-probe validate --retrospective``) "always DELTA+BSS" loses 0.34 points on
#: average against the best method of each cell, "always L2+BSS" 0.60, "always L2-SP+BSS"
#: 0.98. On the six tasks of the CPU suite (``spectral-probe validate --suite cpu``) it loses
#: 0 points, every other candidate 5.4 or more. The numbers are in docs/validation.md.
DEFAULT_METHOD = "delta+bss"

#: Seed-to-seed standard deviation (accuracy in [0, 1]) assumed when a method has one seed:
#: one point, a conservative round figure above the 0.1 to 0.3 points of the paper's five-run
#: standard deviations (Table 2) and about the spread of short CPU pilots. Set it per report
#: with ``--seed-sd-floor``.
SEED_SD_FLOOR = 0.01

#: One-sided level of the corrected comparisons of the best method with the others.
ALPHA = 0.05

#: "high" confidence needs at least this many seeds.
MIN_SEEDS_HIGH = 3

_DRAWS = 4000


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
        """Standard error of the mean: :math:`s/\\sqrt n`, or with one seed
        :math:`\\sqrt{\\sigma_{floor}^2 + p(1-p)/n_{val}}`."""
        n = len(self.accuracies)
        if n > 1:
            return self.std / math.sqrt(n)
        p = min(max(self.mean, 0.0), 1.0)
        return math.sqrt(floor**2 + p * (1 - p) / max(self.n_val, 1))

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
        se: its standard error.
        t: ``diff / se``.
        df: degrees of freedom (``inf`` for the one-seed normal reference).
        p: one-sided p-value of "best is not better".
        n: shared seeds.
    """

    diff: float
    se: float
    t: float
    df: float
    p: float
    n: int


@dataclass(frozen=True)
class Recommendation:
    """What to fine-tune with, and why.

    Attributes:
        method: the recommended regularizer.
        confidence: ``high``, ``medium`` or ``low``.
        z: paired t statistic of the best over the runner-up (``inf`` alone).
        ranking: one row per method: ``method``, ``mean``, ``std``, ``se``, ``n_seeds``,
            ``ci_low``, ``ci_high`` (Student-t 95% interval of the mean), ``rank``,
            ``diff`` (best - method), ``diff_low``, ``diff_high`` (95% interval of it),
            ``p_adj`` (corrected one-sided p of "best is not better"), ``tied`` (not
            detectably worse than the best), ``p_best``.
        reasons: plain-language sentences, in the order the rule applied them.
        outcome: ``best`` (a detectable winner), ``default`` (no detectable difference: the
            default) or ``best-untested`` (no detectable difference, default not usable).
        default: the default method of the rule.
    """

    method: str
    confidence: Confidence
    z: float
    ranking: pd.DataFrame
    reasons: list[str] = field(default_factory=list)
    outcome: str = "best"
    default: str = DEFAULT_METHOD


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
    """One-sided paired comparison of ``best`` with ``other`` over their shared seeds.

    With two or more shared seeds, :math:`t = \\bar d/(s_d/\\sqrt n)`, df :math:`n-1`
    (``scipy.stats.ttest_rel(best, other, alternative="greater")``). With one, the floor of
    the module docstring and a normal reference.

    Raises:
        ValueError: the two methods share no seed.
    """
    a, b = best.by_seed(), other.by_seed()
    shared = sorted(set(a) & set(b))
    if not shared:
        raise ValueError(
            f"expected {best.method} and {other.method} to share pilot seeds, found {sorted(a)} and {sorted(b)}"
        )
    d = np.array([a[s] - b[s] for s in shared])
    n = len(d)
    diff = float(d.mean())
    if n > 1:
        se, df = float(d.std(ddof=1) / math.sqrt(n)), float(n - 1)
    else:
        pa, pb = (min(max(x, 0.0), 1.0) for x in (a[shared[0]], b[shared[0]]))
        nval = max(min(best.n_val, other.n_val), 1)
        se, df = math.sqrt(2 * floor**2 + (pa * (1 - pa) + pb * (1 - pb)) / nval), math.inf
    if se > 0:
        t = diff / se
    else:
        t = math.inf if diff > 0 else (-math.inf if diff < 0 else 0.0)
    p = _t_sf(t, df) if math.isfinite(t) else (0.0 if t > 0 else 1.0)
    return Comparison(diff, se, t, df, p, n)


def prob_best(
    scores: Sequence[PilotScore],
    floor: float = SEED_SD_FLOOR,
    *,
    draws: int = _DRAWS,
    seed: int = 0,
) -> dict[str, float]:
    """Probability that each method is best (see step 3 of the module docstring).

    Seeds shared by every method are redrawn with Dirichlet(1, ..., 1) weights; with one shared
    seed, each method's mean gets independent normal noise of its one-seed standard error.
    Ties in a draw are split evenly.
    """
    rng = np.random.default_rng(seed)
    shared = sorted(set.intersection(*(set(s.seeds) for s in scores)))
    if len(shared) > 1:
        acc = np.array([[s.by_seed()[k] for k in shared] for s in scores])  # (methods, seeds)
        w = rng.dirichlet(np.ones(len(shared)), size=draws)  # (draws, seeds)
        means = w @ acc.T  # (draws, methods)
    else:
        mu = np.array([s.mean for s in scores])
        sd = np.array([s.se(floor) for s in scores])
        means = mu + rng.standard_normal((draws, len(scores))) * sd
    top = means.max(axis=1, keepdims=True)
    is_top = np.isclose(means, top, rtol=0, atol=1e-12)
    share = (is_top / is_top.sum(axis=1, keepdims=True)).mean(axis=0)
    return {s.method: float(p) for s, p in zip(scores, share)}


def _terms(method: str) -> int:
    return len(method.split("+"))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


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
    pbest = prob_best(ordered, seed_sd_floor) if k > 1 else {best.method: 1.0}
    rows = []
    comps: dict[str, Comparison] = {}
    for rank, s in enumerate(ordered, start=1):
        n = len(s.accuracies)
        se = s.se(seed_sd_floor)
        q = _t_ppf(0.975, n - 1 if n > 1 else math.inf)
        row = {
            "method": s.method, "mean": s.mean, "std": s.std, "se": se, "n_seeds": n,
            "ci_low": s.mean - q * se, "ci_high": s.mean + q * se, "rank": rank,
            "diff": 0.0, "diff_low": math.nan, "diff_high": math.nan, "p_adj": math.nan, "tied": True,
            "p_best": pbest[s.method],
        }  # fmt: skip
        if s is not best:
            c = paired_comparison(best, s, seed_sd_floor)
            comps[s.method] = c
            qd = _t_ppf(0.975, c.df)
            p_adj = min(1.0, (k - 1) * c.p)
            row.update(
                diff=c.diff,
                diff_low=c.diff - qd * c.se,
                diff_high=c.diff + qd * c.se,
                p_adj=p_adj,
                tied=bool(p_adj >= alpha),
            )
        rows.append(row)
    ranking = pd.DataFrame(rows)
    if k == 1:
        return Recommendation(
            best.method,
            "low",
            math.inf,
            ranking,
            [f"only {best.method} was piloted"],
            "best-untested",
            default,
        )
    second = ordered[1]
    c2 = comps[second.method]
    n_min = min(len(s.accuracies) for s in ordered)
    reasons = [
        f"{best.method} reached the best pilot validation accuracy, {_pct(best.mean)} over "
        f"{len(best.accuracies)} seed(s); runner-up {second.method} {_pct(second.mean)}: a paired margin of "
        f"{100 * c2.diff:.2f} points (t = {c2.t:.2f}"
        + (
            f", {int(c2.df)} df"
            if math.isfinite(c2.df)
            else f", one seed: seed-sd floor {_pct(seed_sd_floor)}"
        )
        + f"). Probability that {best.method} is best: {pbest[best.method]:.2f}."
    ]
    tied = ranking[ranking["tied"]]["method"].tolist()
    if len(tied) == 1:
        strict = n_min >= MIN_SEEDS_HIGH
        reasons.append(
            f"{best.method} beats each of the other {k - 1} methods at level {alpha:g} after a best-of-{k} "
            "(Bonferroni) correction"
            + (
                "."
                if strict
                else f"; fewer than {MIN_SEEDS_HIGH} seeds, so the confidence is medium at most."
            )
        )
        return Recommendation(
            best.method, "high" if strict else "medium", c2.t, ranking, reasons, "best", default
        )
    reasons.append(
        f"No detectable difference between {', '.join(tied)} (best-of-{k} corrected level {alpha:g})."
    )
    if default in tied:
        reasons.append(
            f"No detectable difference: use {default}, the fixed policy with the lowest regret in the validation "
            "results (docs/validation.md)."
        )
        return Recommendation(default, "low", c2.t, ranking, reasons, "default", default)
    if default in ranking["method"].tolist():
        reasons.append(
            f"The default {default} was piloted and is detectably worse than {best.method}: use the best pilot."
        )
    else:
        reasons.append(f"The default {default} was not piloted: use the best pilot, {best.method}.")
    return Recommendation(best.method, "low", c2.t, ranking, reasons, "best-untested", default)
