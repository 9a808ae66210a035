"""The recommendation: which regularizer to fine-tune with, from pilot runs and spectra.

The rule, in order (documented in docs/report.md):

1. **Pilot validation accuracy decides.** Methods are ranked by their mean validation
   accuracy over pilot seeds. Each mean carries a standard error combining the seed-to-seed
   spread and the binomial noise of a finite validation set,
   :math:`\\mathrm{se}^2 = s^2/n + p(1-p)/(n\\,n_{val})`.
2. **Confidence** comes from the margin of the best method over the runner-up in units of
   the standard error of the difference, :math:`z = (m_1 - m_2)/\\sqrt{\\mathrm{se}_1^2 + \\mathrm{se}_2^2}`:
   high for :math:`z \\ge 2`, medium for :math:`1 \\le z < 2`, low below.
3. **Spectral evidence breaks ties only.** Methods within one standard error of the best are
   tied. Among tied methods the report prefers

   * a ``+bss`` variant when the pre-trained model's batch feature spectrum on the target data
     has a heavy tail (share of energy in the smaller half of the singular values
     :math:`\\ge` ``tail_threshold``): there are small spectral components for BSS to shrink;
   * plain ``l2`` over ``l2-sp`` when the pilot L2 fine-tune turned the top layers' leading
     singular vectors (mean spectral-window alignment of the top layers below
     ``rotation_threshold``): the target task needs those layers to move, and pulling them
     back to the start point risks negative transfer; ``l2-sp`` otherwise;
   * otherwise the simplest method (fewest terms), then the higher mean.

   A tie-break never raises the confidence above "low".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["PilotScore", "SpectralEvidence", "Recommendation", "score_pilots", "recommend"]

Confidence = Literal["high", "medium", "low"]


@dataclass(frozen=True)
class PilotScore:
    """Validation accuracy of one method over pilot seeds.

    Attributes:
        method: regularizer spec (``l2``, ``l2+bss``...).
        accuracies: validation accuracy of each seed, in [0, 1].
        n_val: validation examples each accuracy was measured on.
    """

    method: str
    accuracies: tuple[float, ...]
    n_val: int

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        """Sample standard deviation over seeds (0 with one seed)."""
        return float(np.std(self.accuracies, ddof=1)) if len(self.accuracies) > 1 else 0.0

    @property
    def se(self) -> float:
        """Standard error of the mean: seed spread plus finite-validation-set noise."""
        n = len(self.accuracies)
        p = min(max(self.mean, 0.0), 1.0)
        binomial = p * (1 - p) / max(self.n_val, 1)
        return math.sqrt(self.std**2 / n + binomial / n)


@dataclass(frozen=True)
class SpectralEvidence:
    """Spectral signals the tie-break reads (``None`` when not measured).

    Attributes:
        tail_energy: share of the energy :math:`\\sum\\sigma^2` in the smaller half of the
            singular values of the pre-trained model's batch feature matrices on target data.
        top_alignment: mean spectral-window alignment of the top layers between the
            pre-trained model and the pilot L2 fine-tune.
        tail_threshold: the heavy-tail threshold used.
        rotation_threshold: the top-layer rotation threshold used.
    """

    tail_energy: float | None = None
    top_alignment: float | None = None
    tail_threshold: float = 0.05
    rotation_threshold: float = 0.9


@dataclass(frozen=True)
class Recommendation:
    """What to fine-tune with, and why.

    Attributes:
        method: the recommended regularizer.
        confidence: ``high``, ``medium`` or ``low``.
        z: margin of the best over the runner-up in standard errors (``inf`` alone).
        ranking: one row per method: mean, std, se, n_seeds, ci_low, ci_high, rank, tied.
        reasons: plain-language sentences, in the order the rule applied them.
    """

    method: str
    confidence: Confidence
    z: float
    ranking: pd.DataFrame
    reasons: list[str] = field(default_factory=list)


def score_pilots(results: Mapping[str, Sequence[float]], n_val: int) -> list[PilotScore]:
    """Group per-seed validation accuracies by method."""
    if not results:
        raise ValueError("expected at least one pilot method, found none")
    scores = []
    for method, accs in results.items():
        values = tuple(float(a) for a in accs if a is not None and math.isfinite(a))
        if not values:
            raise ValueError(f"expected finite validation accuracies for {method!r}, found {list(accs)}")
        scores.append(PilotScore(method, values, n_val))
    return scores


def _terms(method: str) -> int:
    return len(method.split("+"))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def recommend(scores: Sequence[PilotScore], evidence: SpectralEvidence | None = None) -> Recommendation:
    """Apply the documented rule to pilot scores and spectral evidence."""
    if not scores:
        raise ValueError("expected at least one pilot score, found none")
    evidence = evidence or SpectralEvidence()
    ordered = sorted(scores, key=lambda s: (-s.mean, _terms(s.method), s.method))
    best = ordered[0]
    rows = []
    for rank, s in enumerate(ordered, start=1):
        half = 1.96 * s.se
        gap_se = math.sqrt(best.se**2 + s.se**2)
        tied = s is best or (best.mean - s.mean) <= gap_se
        rows.append(
            {
                "method": s.method, "mean": s.mean, "std": s.std, "se": s.se, "n_seeds": len(s.accuracies),
                "ci_low": s.mean - half, "ci_high": s.mean + half, "rank": rank, "tied": tied,
            }
        )
    ranking = pd.DataFrame(rows)
    if len(ordered) == 1:
        return Recommendation(best.method, "low", math.inf, ranking, [f"only {best.method} was piloted"])
    second = ordered[1]
    diff_se = math.sqrt(best.se**2 + second.se**2)
    z = (best.mean - second.mean) / diff_se if diff_se > 0 else math.inf
    reasons = [
        f"{best.method} reached the best pilot validation accuracy, {_pct(best.mean)} "
        f"(± {_pct(best.se)} s.e., {len(best.accuracies)} seed(s)); runner-up {second.method} "
        f"{_pct(second.mean)}: a margin of {z:.1f} standard errors."
    ]
    if z >= 2:
        return Recommendation(best.method, "high", z, ranking, reasons)
    if z >= 1:
        reasons.append("The margin is between one and two standard errors: more seeds would make it firmer.")
        return Recommendation(best.method, "medium", z, ranking, reasons)

    tied = [s for s in ordered if bool(ranking.loc[ranking["method"] == s.method, "tied"].iloc[0])]
    reasons.append(
        f"{len(tied)} methods are within one standard error of the best ({', '.join(s.method for s in tied)}); "
        "the spectral evidence breaks the tie."
    )
    pool = tied
    if evidence.tail_energy is not None:
        bss = [s for s in pool if "bss" in s.method.split("+")]
        heavy = evidence.tail_energy >= evidence.tail_threshold
        if heavy and bss:
            pool = bss
            reasons.append(
                f"The pre-trained features of the target data carry {_pct(evidence.tail_energy)} of their energy in the "
                f"smaller half of the spectrum (≥ {_pct(evidence.tail_threshold)}): BSS has small components to shrink."
            )
        elif not heavy:
            no_bss = [s for s in pool if "bss" not in s.method.split("+")]
            pool = no_bss or pool
            reasons.append(
                f"The spectral tail is light ({_pct(evidence.tail_energy)} of the energy in the smaller half, "
                f"< {_pct(evidence.tail_threshold)}): BSS has little to shrink."
            )
    has_l2 = any("l2" in s.method.split("+") for s in pool)
    has_sp = any("l2-sp" in s.method.split("+") for s in pool)
    if evidence.top_alignment is not None and has_l2 and has_sp:
        moved = evidence.top_alignment < evidence.rotation_threshold
        prefer, other = ("l2", "l2-sp") if moved else ("l2-sp", "l2")
        pool = [s for s in pool if prefer in s.method.split("+")]
        reasons.append(
            f"The L2 pilot {'turned' if moved else 'kept'} the top layers' directions (mean spectral-window "
            f"alignment {evidence.top_alignment:.2f}, {'below' if moved else 'at or above'} "
            f"{evidence.rotation_threshold:.2f}): prefer {prefer} over {other}."
        )
    choice = sorted(pool, key=lambda s: (_terms(s.method), -s.mean, s.method))[0]
    if choice is not best:
        reasons.append(f"Recommended {choice.method}, statistically indistinguishable from {best.method} in the pilots.")
    return Recommendation(choice.method, "low", z, ranking, reasons)
