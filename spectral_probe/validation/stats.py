"""Decision statistics: regret against an oracle, Kendall's τ and the weighted τ.

Everything here is a pure function on small arrays or tidy frames (a validation suite has
tens of tasks and a handful of methods), written out so that the definitions are explicit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "WITHIN",
    "PairedDifference",
    "kendall_tau",
    "paired_difference",
    "regret",
    "regret_summary",
    "weighted_tau",
]

#: "within" threshold of :func:`regret_summary`, in accuracy points.
WITHIN = 0.5


def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(n, k=1)


def _check(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(x, dtype=float)
    b = np.asarray(y, dtype=float)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"expected two 1-d sequences of equal length, found shapes {a.shape} and {b.shape}"
        )
    return a, b


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's :math:`\\tau_b` between two paired samples.

    .. math::
        \\tau_b = \\frac{\\sum_{i<j} \\operatorname{sgn}(x_i - x_j)\\operatorname{sgn}(y_i - y_j)}
        {\\sqrt{(n_0 - n_x)(n_0 - n_y)}}

    with :math:`n_0 = n(n-1)/2` pairs, :math:`n_x` and :math:`n_y` the pairs tied in ``x`` and
    in ``y``. NaN when either sample is constant or has fewer than two values.

    Example:
        >>> kendall_tau([1, 2, 3], [1, 3, 2])
        0.3333333333333333
    """
    a, b = _check(x, y)
    i, j = _pairs(len(a))
    sx, sy = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = np.sqrt(np.count_nonzero(sx) * np.count_nonzero(sy))
    return float(np.sum(sx * sy) / denom) if denom > 0 else float("nan")


def _weighted_one_way(a: np.ndarray, b: np.ndarray) -> float:
    # rank 0 = most important: decreasing lexicographic order by (a, b)
    order = np.lexsort((-b, -a))
    rank = np.empty(len(a), dtype=float)
    rank[order] = np.arange(len(a))
    w = 1.0 / (rank + 1.0)
    i, j = _pairs(len(a))
    wij = w[i] + w[j]
    sx, sy = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    denom = np.sqrt(np.sum(wij * (sx != 0)) * np.sum(wij * (sy != 0)))
    return float(np.sum(wij * sx * sy) / denom) if denom > 0 else float("nan")


def weighted_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Vigna's additive hyperbolic weighted :math:`\\tau` (scipy's ``weightedtau`` defaults).

    Element ranks :math:`r` (0 for the largest) get the weight :math:`1/(r+1)`; a pair weighs
    :math:`w_{ij} = 1/(r_i+1) + 1/(r_j+1)`, so disagreements at the top of the ranking count
    most:

    .. math::
        \\tau_w = \\frac{\\sum_{i<j} w_{ij}\\,\\operatorname{sgn}(x_i - x_j)\\operatorname{sgn}(y_i - y_j)}
        {\\sqrt{\\sum_{i<j} w_{ij}[x_i \\ne x_j]\\;\\sum_{i<j} w_{ij}[y_i \\ne y_j]}}

    The ranks are taken by decreasing ``(x, y)`` and by decreasing ``(y, x)`` and the two
    values averaged. Higher values are "better" (accuracies, not rank numbers).

    Example:
        >>> round(weighted_tau([4, 3, 2, 1], [4, 3, 1, 2]), 4)
        0.8133
    """
    a, b = _check(x, y)
    return 0.5 * (_weighted_one_way(a, b) + _weighted_one_way(b, a))


def regret(accuracy: Mapping[str, float], choice: str) -> float:
    """Points lost by choosing ``choice`` instead of the best method: ``max(acc) - acc[choice]``.

    Example:
        >>> regret({"l2": 80.0, "l2+bss": 81.5}, "l2")
        1.5
    """
    if choice not in accuracy:
        raise ValueError(f"expected the choice to be one of {sorted(accuracy)}, found {choice!r}")
    return float(max(accuracy.values()) - accuracy[choice])


def regret_summary(regrets: pd.DataFrame, *, within: float = WITHIN) -> pd.DataFrame:
    """One row per policy from a tidy ``task, policy, regret`` frame.

    Columns: ``policy``, ``regret`` (mean), ``max_regret``, ``share_within`` (share of tasks
    with regret :math:`\\le` ``within`` points), ``n_tasks``; sorted by mean regret.
    """
    import pandas as pd

    rows = []
    for policy, group in regrets.groupby("policy", sort=False):
        r = group["regret"].to_numpy(dtype=float)
        rows.append(
            {
                "policy": policy,
                "regret": float(r.mean()),
                "max_regret": float(r.max()),
                "share_within": float(np.mean(r <= within + 1e-9)),
                "n_tasks": len(r),
            }
        )
    out = pd.DataFrame(rows, columns=["policy", "regret", "max_regret", "share_within", "n_tasks"])
    return out.sort_values(["regret", "policy"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class PairedDifference:
    """Paired comparison of two policies over the same tasks (``a - b``, in points).

    Attributes:
        n: tasks compared.
        wins / losses / ties: tasks where ``a`` is above, below, equal to ``b``.
        mean: mean difference :math:`\\bar d`.
        ci_low / ci_high: two-sided Student-t interval of the mean difference at ``level``.
        p_t: two-sided paired t-test p-value (``scipy.stats.ttest_rel``).
        p_sign: two-sided exact sign test p-value over the untied tasks.
        level: confidence level of the interval.
    """

    n: int
    wins: int
    losses: int
    ties: int
    mean: float
    ci_low: float
    ci_high: float
    p_t: float
    p_sign: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_difference(
    a: Sequence[float], b: Sequence[float], *, level: float = 0.95
) -> PairedDifference:
    """Wins, mean difference with its t interval, paired t and sign tests of ``a - b``.

    With :math:`d_i = a_i - b_i`, :math:`t = \\bar d / (s_d / \\sqrt n)` on :math:`n-1`
    degrees of freedom; the interval is :math:`\\bar d \\pm t_{(1+level)/2,\\,n-1}\\,
    s_d/\\sqrt n`; the sign test is the binomial test of the wins among untied tasks at 1/2.
    Tasks are treated as independent; where they are not (rates of one dataset), the p-values
    are optimistic.

    Example:
        >>> r = paired_difference([1.0, 2.0, 3.0, 4.0], [0.0, 2.5, 2.0, 3.0])
        >>> (r.wins, r.losses, r.ties, r.mean)
        (3, 1, 0, 0.625)
    """
    from scipy import stats

    x, y = _check(a, b)
    if len(x) < 2:
        raise ValueError(f"expected at least 2 paired tasks, found {len(x)}")
    d = x - y
    n = len(d)
    wins, losses = int((d > 0).sum()), int((d < 0).sum())
    se = float(d.std(ddof=1)) / np.sqrt(n)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * se
    p_t = float(stats.ttest_rel(x, y).pvalue) if se > 0 else (1.0 if d.mean() == 0 else 0.0)
    untied = wins + losses
    p_sign = float(stats.binomtest(wins, untied, 0.5).pvalue) if untied else 1.0
    mean = float(d.mean())
    return PairedDifference(
        n=n, wins=wins, losses=losses, ties=n - untied, mean=mean, ci_low=mean - half,
        ci_high=mean + half, p_t=p_t, p_sign=p_sign, level=level,
    )  # fmt: skip
