r"""The deciding numbers of the paper's figures and the rules that turn them into verdicts.

Pure functions of tidy tables (per-layer angle statistics of each run, per-run feature
statistics, the runs' test errors: the tables of
:class:`~spectral_probe.report.reproduction_data.ReproductionData`).

Every verdict is three-way (:func:`three_way`), judged on a 95 % interval for *our* effect
in the units of the paper's claim:

* **reproduced**: the interval excludes "no effect" on the side the paper claims (and, where
  the paper states a magnitude, does not lie wholly short of it);
* **contradicted**: the interval lies wholly short of the paper's effect: on the opposite
  side of "no effect", or (where a magnitude is stated) between "no effect" and it;
* **inconclusive**: anything else, including a missing interval (one seed, or a NaN such
  as Figure 1(b)'s stable view when no index has a Wedin bound below 1).

Differences are Student-t 95 % intervals over seeds,
:math:`\bar x \pm t_{0.975,\,n-1}\, s / \sqrt n`; ratios are the same on the log scale
(geometric means). Effects measured at several sampling rates are pooled over the rates by
:func:`pooled_log_ratio`. A verdict is *provisional* when a cell it rests on has fewer than
three seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._results import records

__all__ = [
    "CLAIMS",
    "FIGURES",
    "ONE_EFFECT",
    "PAPER_EFFECTS",
    "RULES",
    "VERDICTS",
    "Finding",
    "combine_verdicts",
    "mean_ci",
    "log_ratio_ci",
    "pooled_log_ratio",
    "three_way",
    "top_rest",
    "angle_finding",
    "sweep_finding",
    "not_run",
]

FIGURES = ("1b", "1c", "1d", "3a", "3b", "3c", "3d")
VERDICTS = ("reproduced", "inconclusive", "contradicted", "not yet run")

#: Figures that measure the same effect as another one (not independent confirmations).
ONE_EFFECT = {"1d": "1c"}

#: The paper's claim per figure, in one sentence.
CLAIMS = {
    "1b": "In the lower layers all singular vectors of the fine-tuned weights stay aligned with the "
    "pre-trained ones; in the higher layers only those with the largest singular values do.",
    "1c": "Models fine-tuned on more data have smaller relative small singular values in their batch "
    "feature matrices (all singular values).",
    "1d": "The effect of 1(c), read on the smaller half of the singular values: it shrinks as the "
    "training set grows (the same spectra as 1(c), so one effect, not a second confirmation).",
    "3a": "When data are scarce, truncating the r smallest spectral components (TSVD) with a larger r "
    "lowers the error; with ample data a larger r may raise it.",
    "3b": "BSS with k = 1 suppresses the small singular values of the feature matrix, more than just the "
    "smallest one.",
    "3c": "In the smaller half of the singular values, features trained with L2+BSS lie below those "
    "trained with L2.",
    "3d": "When data are scarce, penalising the k smallest singular values with a larger k lowers the "
    "error; with ample data a larger k slightly raises it.",
}

#: The paper's effect size per figure, in the units of the deciding number, where its text
#: states one. The paper plots these effects (Figures 1 and 3) without stating numbers, so
#: none is set: the verdicts use the claimed direction, and "contradicted" needs an interval
#: on the opposite side. :func:`three_way` takes a magnitude once one is known.
PAPER_EFFECTS: dict[str, float | None] = dict.fromkeys(FIGURES)

_THREE_WAY = (
    "Reproduced when the 95% interval excludes {null} on the paper's side ({side}); contradicted "
    "when it lies wholly on the other side; otherwise (or without an interval) inconclusive."
)

#: The rule each verdict follows.
RULES = {
    "1b": "For the L2 runs at the largest rate, per layer: top = mean |cos| of the leading 10% of "
    "indices, rest = mean |cos| of the others, gap = top - rest. Lower layers = the first conv and the "
    "first block, higher = the last block (the paper's choice; without numbered blocks, the first and last "
    "third of the layers). Per seed: contrast = gap(higher) - gap(lower) and rest(lower). Two tests per "
    "view, each three-way on its interval over seeds: contrast above 0 (the higher layers' leading vectors "
    "stand out more) and rest(lower) above 0.9 (the lower layers stay aligned; the page's threshold, the "
    "paper states none). Index view: all indices; stable view: only indices whose Wedin bound is below 1 "
    "(NaN when too few are: inconclusive). Reproduced when every test of both views is; contradicted when "
    "any is; otherwise inconclusive (the window view is shown beside).",
    "1c": "q = mean of sigma_i / sigma_1 over all indices (per test batch, then averaged), L2 runs. "
    "Effect: q(lowest rate) / q(highest rate), paired by seed, geometric mean with its 95% interval. "
    + _THREE_WAY.format(null="1", side="above 1")
    + " Spearman's rho(rate, q) is shown, not tested.",
    "1d": "q = share of the energy sum sigma_i^2 in the smaller half of the indices, L2 runs; the rule "
    "of 1(c). The same spectra as 1(c): one effect, counted once.",
    "3a": "Error (%) of L2+TSVD at the largest r minus L2 (r = 0) at the lowest rate, paired by seed, "
    "with its 95% interval. "
    + _THREE_WAY.format(null="0", side="below 0")
    + " The highest rate's difference is shown (the paper says only that it 'may' rise).",
    "3b": "Per (rate, seed) pair of L2 and L2+BSS runs: the ratio of sigma_i / sigma_1 with BSS to "
    "without, for the smallest index b and the next one b-1. Each pooled over the rates "
    "(pooled_log_ratio: the mean over rates of the mean log ratio, with the pooled within-rate variance). "
    "Tested three-way below 1 for index b and for index b-1 ('more than just the smallest'): reproduced "
    "when both are, contradicted when either is, otherwise inconclusive.",
    "3c": "Per (rate, seed) pair: ratio of the smaller half's energy share (1(d)'s q) with BSS to without. "
    "Pooled over the rates (pooled_log_ratio: the mean over rates of the mean log ratio, with the pooled "
    "within-rate variance, df = pairs - rates; Stouffer's combination of the per-rate one-sided t-tests "
    "is shown beside). " + _THREE_WAY.format(null="1", side="below 1"),
    "3d": "Error (%) of L2+BSS at the largest k minus k = 1 at the lowest rate, paired by seed, with its "
    "95% interval. "
    + _THREE_WAY.format(null="0", side="below 0")
    + " The highest rate's difference is shown where it was run.",
}


@dataclass(frozen=True)
class Finding:
    """One figure's claim, deciding numbers and verdict.

    Attributes:
        figure: ``"1b"``, ``"1c"``...
        verdict: one of :data:`VERDICTS`.
        provisional: a cell it rests on has fewer than three seeds.
        numbers: the deciding numbers (plain floats and ints).
        table: the numbers behind them (per layer, per rate...).
        runs: the run ids it was measured on.
    """

    figure: str
    verdict: str
    provisional: bool = False
    numbers: Mapping[str, Any] = field(default_factory=dict)
    table: pd.DataFrame = field(default_factory=pd.DataFrame)
    runs: tuple[str, ...] = ()

    @property
    def claim(self) -> str:
        """The paper's claim (:data:`CLAIMS`)."""
        return CLAIMS[self.figure]

    @property
    def rule(self) -> str:
        """How the verdict follows from the numbers (:data:`RULES`)."""
        return RULES[self.figure]

    @property
    def same_effect_as(self) -> str | None:
        """The figure this one measures the same effect as (:data:`ONE_EFFECT`), if any."""
        return ONE_EFFECT.get(self.figure)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "figure": self.figure,
            "claim": self.claim,
            "rule": self.rule,
            "verdict": self.verdict,
            "provisional": self.provisional,
            "same_effect_as": self.same_effect_as,
            "numbers": dict(self.numbers),
            "table": records(self.table),
            "runs": list(self.runs),
        }


def not_run(figure: str) -> Finding:
    """The finding of a figure whose runs are missing."""
    return Finding(figure=figure, verdict="not yet run")


# ---------------------------------------------------------------- verdict rules


def _nan(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def three_way(
    low: float | None,
    high: float | None,
    *,
    direction: int,
    null: float = 0.0,
    paper: float | None = None,
) -> str:
    """The verdict of an interval ``[low, high]`` for an effect the paper claims.

    Args:
        low, high: the 95 % interval of our effect (NaN or ``None``: no interval).
        direction: ``+1`` when the paper claims an effect above ``null``, ``-1`` below.
        null: the value of "no effect" (0 for differences, 1 for ratios).
        paper: the paper's effect size in the same units, where it states one.

    Returns:
        ``"reproduced"`` when the interval excludes ``null`` on the paper's side and (with
        ``paper``) does not lie wholly short of the paper's effect; ``"contradicted"`` when
        it lies wholly short of the paper's effect (with no magnitude: wholly on the other
        side of ``null``); ``"inconclusive"`` otherwise, and for a missing interval.

    Example:
        >>> three_way(-3.0, -1.0, direction=-1), three_way(-2.3, 2.5, direction=-1)
        ('reproduced', 'inconclusive')
        >>> three_way(0.5, 1.5, direction=-1), three_way(-0.2, 0.3, direction=-1, paper=-1.0)
        ('contradicted', 'contradicted')
        >>> three_way(float("nan"), 1.0, direction=1)
        'inconclusive'
    """
    if direction not in (1, -1):
        raise ValueError(f"expected direction +1 or -1, found {direction!r}")
    if _nan(low) or _nan(high):
        return "inconclusive"
    a, b = float(low), float(high)  # type: ignore[arg-type]  # not None: _nan checked
    # oriented so that the paper's effect is positive
    lo, hi = (a - null, b - null) if direction > 0 else (null - b, null - a)
    if paper is not None and not _nan(paper):
        target = (paper - null) * direction
        if target <= 0:
            raise ValueError(
                f"expected the paper's effect on its claimed side of {null}, found {paper}"
            )
        if hi < target:
            return "contradicted"
    elif hi < 0:
        return "contradicted"
    return "reproduced" if lo > 0 else "inconclusive"


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """Several tests of one claim: reproduced when all are, contradicted when any is.

    Example:
        >>> combine_verdicts(["reproduced", "inconclusive"]), combine_verdicts(["reproduced", "contradicted"])
        ('inconclusive', 'contradicted')
    """
    if not verdicts:
        return "inconclusive"
    if "contradicted" in verdicts:
        return "contradicted"
    return "reproduced" if all(v == "reproduced" for v in verdicts) else "inconclusive"


def mean_ci(
    values: Sequence[float] | np.ndarray, level: float = 0.95
) -> tuple[float, float, float, int]:
    r"""Mean and Student-t interval of ``values`` (NaNs dropped): ``(mean, low, high, n)``.

    :math:`\bar x \pm t_{(1+\text{level})/2,\,n-1}\, s / \sqrt n`; ``low = high = NaN`` for
    ``n < 2``.

    Example:
        >>> m, lo, hi, n = mean_ci([1.0, 2.0, 3.0])
        >>> round(m, 3), round(lo, 3), round(hi, 3), n
        (2.0, -0.484, 4.484, 3)
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    m = float(x.mean())
    if n < 2:
        return m, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return m, m - half, m + half, n


def _logs(ratios: Sequence[float] | np.ndarray) -> np.ndarray:
    """Natural logs of ``ratios``; a non-positive or missing ratio becomes NaN."""
    r = np.asarray(ratios, dtype=float)
    out = np.full(r.shape, math.nan)
    ok = r > 0
    out[ok] = np.log(r[ok])
    return out


def log_ratio_ci(
    ratios: Sequence[float] | np.ndarray, level: float = 0.95
) -> tuple[float, float, float, int]:
    """Geometric mean of ``ratios`` and its interval: :func:`mean_ci` of the logs, exponentiated.

    Example:
        >>> m, lo, hi, n = log_ratio_ci([0.5, 2.0])
        >>> round(m, 6), n
        (1.0, 2)
    """
    m, lo, hi, n = mean_ci(_logs(ratios), level)
    return math.exp(m) if n else math.nan, math.exp(lo), math.exp(hi), n


def pooled_log_ratio(
    groups: Mapping[Any, Sequence[float] | np.ndarray], level: float = 0.95
) -> dict[str, float]:
    r"""A paired effect measured at several sampling rates, pooled over the rates.

    Each group (a rate) holds paired ratios (one per seed). With :math:`x_{gi}` their logs,
    :math:`n_g` per group, :math:`G` groups and :math:`N = \sum n_g`, the pooled estimate is
    the mean over the rates of the per-rate mean log ratio, with the pooled within-rate
    variance (a paired t-test blocked by rate, as a one-way model with rate effects):

    .. math::

        \hat\mu = \frac1G \sum_g \bar x_g, \qquad
        s^2 = \frac{\sum_g \sum_i (x_{gi} - \bar x_g)^2}{N - G}, \qquad
        \operatorname{se} = \frac{s}{G} \sqrt{\sum_g 1/n_g},

    interval :math:`\hat\mu \pm t_{(1+\text{level})/2,\,N-G}\,\operatorname{se}`,
    exponentiated. Beside it, Stouffer's combination of the per-rate one-sided paired
    t-tests (:math:`H_1`: ratio below 1), :math:`Z = \sum_g \Phi^{-1}(1 - p_g) / \sqrt{G}`.

    Returns:
        ``ratio`` (the pooled geometric mean ratio), ``ci_low``, ``ci_high``, ``df``,
        ``p_below`` (one-sided p of the pooled test for a ratio below 1), ``stouffer_p_below``
        and ``n`` (pairs); NaN where a number cannot be formed (``df < 1``; Stouffer needs
        two pairs in every rate).
    """
    from scipy import stats

    logs = [x[~np.isnan(x)] for x in (_logs(v) for v in groups.values())]
    logs = [x for x in logs if x.size]
    nan = math.nan
    out = {"ratio": nan, "ci_low": nan, "ci_high": nan, "df": 0.0, "p_below": nan}
    out.update({"stouffer_p_below": nan, "n": float(sum(x.size for x in logs))})
    if not logs:
        return out
    g = len(logs)
    mu = float(np.mean([x.mean() for x in logs]))
    out["ratio"] = math.exp(mu)
    df = int(sum(x.size for x in logs)) - g
    out["df"] = float(df)
    if df >= 1:
        ss = float(sum(((x - x.mean()) ** 2).sum() for x in logs))
        se = math.sqrt(ss / df) / g * math.sqrt(sum(1.0 / x.size for x in logs))
        if se > 0:
            half = float(stats.t.ppf(0.5 + level / 2, df)) * se
            out["ci_low"], out["ci_high"] = math.exp(mu - half), math.exp(mu + half)
            out["p_below"] = float(stats.t.cdf(mu / se, df))
    if all(x.size >= 2 and x.std(ddof=1) > 0 for x in logs):
        ps = [float(stats.ttest_1samp(x, 0.0, alternative="less").pvalue) for x in logs]
        z = sum(float(stats.norm.isf(p)) for p in ps) / math.sqrt(g)
        out["stouffer_p_below"] = float(stats.norm.sf(z))
    return out


# ---------------------------------------------------------------- Figure 1(b)


def top_rest(
    cos: np.ndarray, keep: np.ndarray | None = None, fraction: float = 0.1
) -> tuple[float, float]:
    r"""Mean of ``|cos|`` over the leading ``max(1, ceil(fraction n))`` indices and over the rest.

    ``keep`` (a boolean mask) restricts both means to the kept indices (the stable view);
    NaN entries are ignored (as :func:`~spectral_probe.spectral.leading_mean` does); an
    empty side is NaN.

    Example:
        >>> top_rest(np.array([1.0, 0.9, 0.5, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]))
        (0.95, 0.16666666666666666)
    """
    c = np.abs(np.asarray(cos, dtype=float))
    n = c.size
    lead = np.zeros(n, dtype=bool)
    lead[: max(1, math.ceil(fraction * n))] = True
    k = np.ones(n, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    finite = ~np.isnan(c)
    a, b = c[lead & k & finite], c[~lead & k & finite]
    return (float(a.mean()) if a.size else math.nan, float(b.mean()) if b.size else math.nan)


#: The columns of the per-layer table of Figure 1(b) (one row per run and layer).
LAYER_COLUMNS = (
    "run_id",
    "depth",
    "layer",
    "group",
    "rank",
    "top_index",
    "rest_index",
    "top_stable",
    "rest_stable",
    "top_window",
    "rest_window",
    "stable_share",
)

#: The lower layers' rest |cos| that counts as "aligned" (the page's threshold).
ALIGNED = 0.9


def angle_finding(layers: pd.DataFrame, rate: str | None = None) -> Finding:
    """Figure 1(b) from the per-layer table of the L2 runs at the largest rate (one run per seed).

    ``layers`` has the columns of :data:`LAYER_COLUMNS` (from
    :func:`~spectral_probe.report.reproduction_data.layer_contrast`).
    """
    if layers.empty:
        return not_run("1b")
    per_seed = []
    for _, t in layers.groupby("run_id", sort=True):
        row: dict[str, float] = {}
        for view in ("index", "stable", "window"):
            gap = t[f"top_{view}"] - t[f"rest_{view}"]
            low, high = t["group"] == "lower", t["group"] == "higher"
            row[f"rest_lower_{view}"] = float(t.loc[low, f"rest_{view}"].mean())
            row[f"gap_lower_{view}"] = float(gap[low].mean())
            row[f"gap_higher_{view}"] = float(gap[high].mean())
            row[f"contrast_{view}"] = row[f"gap_higher_{view}"] - row[f"gap_lower_{view}"]
        per_seed.append(row)
    seeds = pd.DataFrame(per_seed)
    numbers: dict[str, Any] = {}
    tests = []
    for view in ("index", "stable", "window"):
        for name, null in (("contrast", 0.0), ("rest_lower", ALIGNED)):
            m, lo, hi, _ = mean_ci(seeds[f"{name}_{view}"].to_numpy(dtype=float))
            v = three_way(lo, hi, direction=1, null=null)
            numbers[f"{name}_{view}"] = m
            numbers[f"{name}_{view}_ci_low"] = lo
            numbers[f"{name}_{view}_ci_high"] = hi
            numbers[f"{name}_{view}_verdict"] = v
            if view != "window":
                tests.append(v)
    numbers["n_seeds"] = len(per_seed)
    numbers["rate"] = rate
    cols = [c for c in LAYER_COLUMNS if c not in ("run_id", "depth", "layer", "group", "rank")]
    table = layers.groupby(["depth", "layer", "group", "rank"], sort=True)[cols].mean()
    return Finding(
        "1b",
        combine_verdicts(tests),
        provisional=len(per_seed) < 3,
        numbers=numbers,
        table=table.reset_index(),
        runs=tuple(sorted(set(layers["run_id"]))),
    )


# ---------------------------------------------------------------- Figures 3(a), 3(d)


def sweep_finding(figure: str, runs: pd.DataFrame) -> Finding:
    """3(a) (TSVD's r, L2 as r = 0) or 3(d) (BSS's k, k = 1 as the reference) from test errors."""
    if figure == "3a":
        arm = runs[(runs["method"] == "l2+tsvd") | (runs["method"] == "l2")].copy()
        arm["x"] = arm["r"]
    else:
        arm = runs[runs["method"] == "l2+bss"].copy()
        arm["x"] = arm["k"]
    ref = 0 if figure == "3a" else 1
    if arm.empty or arm["x"].nunique() < 2 or ref not in set(arm["x"]):
        return not_run(figure)
    name = "r" if figure == "3a" else "k"
    table = (
        arm.groupby(["rate", "rate_percent", "x"])["error"]
        .agg(["mean", "std", "count"])
        .reset_index()
        .rename(columns={"x": name, "count": "n"})
        .sort_values(["rate_percent", name])
    )
    numbers: dict[str, Any] = {}
    verdict = "not yet run"
    lowest = arm["rate_percent"].min()
    for label, pct in (("lowest", lowest), ("highest", arm["rate_percent"].max())):
        at = arm[arm["rate_percent"] == pct]
        if (
            at["x"].nunique() < 2
            or ref not in set(at["x"])
            or (label == "highest" and pct == lowest)
        ):
            continue  # nothing to compare at this rate (or it is the lowest one again)
        xmax = int(at["x"].max())
        d = (
            at[at["x"] == xmax].set_index("seed")["error"]
            - at[at["x"] == ref].set_index("seed")["error"]
        ).dropna()
        m, lo, hi, n = mean_ci(d.to_numpy(dtype=float))
        numbers.update(
            {
                f"{label}_rate": str(at["rate"].iloc[0]),
                f"{label}_{name}_max": xmax,
                f"{label}_delta": m,
                f"{label}_ci_low": lo,
                f"{label}_ci_high": hi,
                f"{label}_n": n,
            }
        )
        if label == "lowest":
            verdict = three_way(lo, hi, direction=-1, paper=PAPER_EFFECTS[figure])
    if verdict == "not yet run":
        return not_run(figure)
    return Finding(
        figure,
        verdict,
        provisional=int(table["n"].min()) < 3,
        numbers=numbers,
        table=table.reset_index(drop=True),
        runs=tuple(arm["run_id"]),
    )
