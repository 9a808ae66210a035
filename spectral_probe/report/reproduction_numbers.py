r"""The deciding numbers of the paper's figures and the rules that turn them into verdicts.

Pure functions of tidy tables (a :class:`~spectral_probe.analysis.WeightComparison`'s angles,
a :class:`~spectral_probe.analysis.FeatureSpectra`'s per-batch singular values, the runs'
test errors). Intervals are Student-t 95 % intervals over seeds,
:math:`\bar x \pm t_{0.975,\,n-1}\, s / \sqrt n` (none for one seed). A verdict is
*provisional* when a cell it rests on has fewer than three seeds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..analysis._results import records

if TYPE_CHECKING:
    from ..analysis import WeightComparison

__all__ = [
    "CLAIMS",
    "FIGURES",
    "RULES",
    "VERDICTS",
    "Finding",
    "mean_ci",
    "top_rest",
    "layer_contrast",
    "depth_groups",
    "angle_finding",
    "sweep_finding",
    "not_run",
]

FIGURES = ("1b", "1c", "1d", "3a", "3b", "3c", "3d")
VERDICTS = ("reproduced", "not reproduced", "reproduced only for stable indices", "not yet run")

#: The paper's claim per figure, in one sentence.
CLAIMS = {
    "1b": "In the lower layers all singular vectors of the fine-tuned weights stay aligned with the "
    "pre-trained ones; in the higher layers only those with the largest singular values do.",
    "1c": "Models fine-tuned on more data have smaller relative small singular values in their batch "
    "feature matrices (all singular values).",
    "1d": "The same seen in the smaller half of the singular values: it shrinks as the training set grows.",
    "3a": "When data are scarce, truncating the r smallest spectral components (TSVD) with a larger r "
    "lowers the error; with ample data a larger r may raise it.",
    "3b": "BSS with k = 1 suppresses the small singular values of the feature matrix, more than just the "
    "smallest one.",
    "3c": "In the smaller half of the singular values, features trained with L2+BSS lie below those "
    "trained with L2.",
    "3d": "When data are scarce, penalising the k smallest singular values with a larger k lowers the "
    "error; with ample data a larger k slightly raises it.",
}

#: The rule each verdict follows.
RULES = {
    "1b": "For the L2 runs at the largest rate, per layer: top = mean |cos| of the leading 10% of "
    "indices, rest = mean |cos| of the others, gap = top - rest. Lower layers = the first conv and the "
    "first block, higher = the last block (the paper's choice; without numbered blocks, the first and last "
    "third of the layers). A view passes when the lower layers' "
    "rest >= 0.9 and gap(higher) - gap(lower) >= 0.1 (means over seeds). Index view: all indices; stable "
    "view: only indices whose Wedin bound is below 1. Reproduced: both pass; reproduced only for stable "
    "indices: only the stable view passes; not reproduced: otherwise (the window view is shown beside).",
    "1c": "q = mean of sigma_i / sigma_1 over all indices (per test batch, then averaged), L2 runs. "
    "Reproduced when q(lowest rate) / q(highest rate), paired by seed, has its 95% interval above 1 "
    "(one seed: its value above 1) and Spearman's rho(rate, q) over the runs is negative.",
    "1d": "q = share of the energy sum sigma_i^2 in the smaller half of the indices, L2 runs; the rule "
    "of 1(c).",
    "3a": "Error (%) of L2+TSVD at the largest r minus L2 (r = 0) at the lowest rate, paired by seed. "
    "Reproduced when its 95% interval lies below 0 (one seed: the value below 0).",
    "3b": "Per rate, paired by seed: ratio of sigma_b / sigma_1 (the smallest index) with BSS to without, "
    "and the number of the 4 smallest indices whose mean ratio is below 1. Reproduced when at every rate "
    "the smallest index's interval lies below 1 (one seed: the value) and at least 2 of the 4 are below 1.",
    "3c": "Per rate, paired by seed: ratio of the smaller half's energy share (1(d)'s q) with BSS to "
    "without. Reproduced when its 95% interval lies below 1 at every rate (one seed: the value).",
    "3d": "Error (%) of L2+BSS at the largest k minus k = 1 at the lowest rate, paired by seed. "
    "Reproduced when its 95% interval lies below 0 (one seed: the value below 0).",
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

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "figure": self.figure,
            "claim": self.claim,
            "rule": self.rule,
            "verdict": self.verdict,
            "provisional": self.provisional,
            "numbers": dict(self.numbers),
            "table": records(self.table),
            "runs": list(self.runs),
        }


def not_run(figure: str) -> Finding:
    """The finding of a figure whose runs are missing."""
    return Finding(figure=figure, verdict="not yet run")


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


def _below(m: float, hi: float, n: int, bound: float) -> bool:
    """The interval (one value: the value) lies below ``bound``."""
    return (hi < bound) if n >= 2 else (m < bound)


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


def layer_contrast(
    result: WeightComparison, lower: Sequence[str], higher: Sequence[str]
) -> pd.DataFrame:
    """Per compared layer: ``top``/``rest`` of the index, stable and window views and the depth group.

    Columns: ``layer``, ``depth`` (0-based order), ``group`` (``lower``, ``higher`` or ``""``),
    ``rank``, ``top_index``, ``rest_index``, ``top_stable``, ``rest_stable``, ``top_window``,
    ``rest_window``, ``stable_share`` (share of indices with a Wedin bound below 1).
    """
    rows = []
    for depth, (name, group) in enumerate(result.angles.groupby("layer", sort=False)):
        g = group.sort_values("index")
        cos = g["cos"].to_numpy()
        stable = g["resolvable"].to_numpy(dtype=bool)
        ti, ri = top_rest(cos)
        ts, rs = top_rest(cos, stable)
        tw, rw = top_rest(g["cos_window"].to_numpy())
        depth_group = "lower" if name in lower else "higher" if name in higher else ""
        rows.append(
            {
                "layer": name,
                "depth": depth,
                "group": depth_group,
                "rank": len(g),
                "top_index": ti,
                "rest_index": ri,
                "top_stable": ts,
                "rest_stable": rs,
                "top_window": tw,
                "rest_window": rw,
                "stable_share": float(stable.mean()) if stable.size else math.nan,
            }
        )
    return pd.DataFrame(rows)


def depth_groups(result: WeightComparison) -> tuple[list[str], list[str]]:
    """The paper's lower layers (first conv, first block) and higher layers (last block).

    A model without numbered blocks: the first and the last third of the compared layers.
    """
    from ..plotting.weights import block_of, default_plot_layers

    chosen = default_plot_layers(result.layers["layer"], result.layers["kind"])
    blocks = [block_of(n) for n in chosen]
    last = blocks[-1] if blocks else ""
    higher = [n for n, b in zip(chosen, blocks) if b == last and b != n]
    lower = [n for n in chosen if n not in higher]
    if not higher:
        names = list(result.layers["layer"])
        third = max(1, len(names) // 3)
        lower, higher = names[:third], names[-third:] if len(names) > 1 else []
    return lower, higher


def angle_finding(weights: Mapping[str, WeightComparison], runs: pd.DataFrame) -> Finding:
    """Figure 1(b) from the weight comparisons of the L2 runs at the largest rate (one per seed)."""
    per_seed = []
    tables = []
    for run_id, result in weights.items():
        lower, higher = depth_groups(result)
        t = layer_contrast(result, lower, higher)
        t.insert(0, "run_id", run_id)
        tables.append(t)
        row: dict[str, float] = {}
        for view in ("index", "stable", "window"):
            gap = t[f"top_{view}"] - t[f"rest_{view}"]
            low, high = t["group"] == "lower", t["group"] == "higher"
            row[f"rest_lower_{view}"] = float(t.loc[low, f"rest_{view}"].mean())
            row[f"gap_lower_{view}"] = float(gap[low].mean())
            row[f"gap_higher_{view}"] = float(gap[high].mean())
        per_seed.append(row)
    seeds = pd.DataFrame(per_seed)
    numbers: dict[str, Any] = {k: float(seeds[k].mean()) for k in seeds}
    passes = {}
    for view in ("index", "stable", "window"):
        contrast = numbers[f"gap_higher_{view}"] - numbers[f"gap_lower_{view}"]
        numbers[f"contrast_{view}"] = contrast
        passes[view] = bool(numbers[f"rest_lower_{view}"] >= 0.9 and contrast >= 0.1)
        numbers[f"passes_{view}"] = passes[view]
    numbers["n_seeds"] = len(per_seed)
    numbers["rate"] = str(runs["rate"].iloc[0]) if not runs.empty else None
    if passes["index"] and passes["stable"]:
        verdict = "reproduced"
    elif passes["stable"]:
        verdict = "reproduced only for stable indices"
    else:
        verdict = "not reproduced"
    table = pd.concat(tables, ignore_index=True)
    cols = [
        "top_index",
        "rest_index",
        "top_stable",
        "rest_stable",
        "top_window",
        "rest_window",
        "stable_share",
    ]
    table = table.groupby(["depth", "layer", "group", "rank"], sort=True)[cols].mean().reset_index()
    return Finding(
        "1b",
        verdict,
        provisional=len(per_seed) < 3,
        numbers=numbers,
        table=table,
        runs=tuple(weights),
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
    table = (
        arm.groupby(["rate", "rate_percent", "x"])["error"]
        .agg(["mean", "std", "count"])
        .reset_index()
    )
    table = table.rename(columns={"x": "r" if figure == "3a" else "k", "count": "n"}).sort_values(
        ["rate_percent"]
    )
    numbers: dict[str, Any] = {}
    verdict = "not reproduced"
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
        m, lo, hi, n = mean_ci(d.to_numpy())
        numbers.update(
            {
                f"{label}_rate": str(at["rate"].iloc[0]),
                f"{label}_x_max": xmax,
                f"{label}_delta": m,
                f"{label}_ci_low": lo,
                f"{label}_ci_high": hi,
                f"{label}_n": n,
            }
        )
        if label == "lowest" and n > 0 and _below(m, hi, n, 0.0):
            verdict = "reproduced"
    return Finding(
        figure,
        verdict,
        provisional=int(table["n"].min()) < 3,
        numbers=numbers,
        table=table.reset_index(drop=True),
        runs=tuple(arm["run_id"]),
    )
