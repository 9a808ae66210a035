"""The scores by name: what each needs and computes. The CLI choices, docs and tests iterate it."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from .h_score import h_score
from .leep import leep
from .logme import logme
from .nce import nce
from .regularized_h_score import regularized_h_score
from .sfda import sfda
from .transrate import transrate

__all__ = ["Score", "SCORES", "Needs", "list_scores", "get_score", "check_scores"]

Needs = Literal["features", "source_probs", "source_labels"]


@dataclass(frozen=True)
class Score:
    """One transferability score.

    Attributes:
        name: the name the CLI and results use.
        fn: ``fn(inputs, labels) -> float``; higher is better for every score.
        needs: ``"features"`` (penultimate features ``(N, D)``), ``"source_probs"`` (the source
            classifier's softmax ``(N, C_s)``) or ``"source_labels"`` (its argmax ``(N,)``).
        paper: the reference, one line.
        measures: what it measures, one line.
    """

    name: str
    fn: Callable[[Any, Any], float]
    needs: Needs
    paper: str
    measures: str


SCORES: dict[str, Score] = {
    s.name: s
    for s in (
        Score(
            "logme",
            logme,
            "features",
            "You et al., ICML 2021",
            "evidence of a Bayesian linear model of the one-hot labels on the features",
        ),
        Score(
            "leep",
            leep,
            "source_probs",
            "Nguyen et al., ICML 2020",
            "log-likelihood of the target labels through the source classifier's outputs",
        ),
        Score(
            "nce",
            nce,
            "source_labels",
            "Tran et al., ICCV 2019",
            "negative conditional entropy of the target labels given the source argmax",
        ),
        Score(
            "h_score",
            h_score,
            "features",
            "Bao et al., ICIP 2019",
            "share of the feature covariance explained by the class means",
        ),
        Score(
            "regularized_h_score",
            regularized_h_score,
            "features",
            "Ibrahim et al., ECML-PKDD 2022",
            "H-score with a Ledoit-Wolf shrinkage covariance",
        ),
        Score(
            "transrate",
            transrate,
            "features",
            "Huang et al., ICML 2022",
            "coding rate of the features minus their coding rate within each class",
        ),
        Score(
            "sfda",
            sfda,
            "features",
            "Shao et al., ECCV 2022",
            "class separability in a regularised Fisher space after self-challenging mixing",
        ),
    )
}


def list_scores() -> list[Score]:
    """Every registered score, in registry order."""
    return list(SCORES.values())


def get_score(name: str) -> Score:
    """The score called ``name``.

    Raises:
        ConfigError: an unknown name (with the close matches and every choice).
    """
    key = name.strip().lower().replace("-", "_")
    if key in SCORES:
        return SCORES[key]
    close = difflib.get_close_matches(key, SCORES, n=3, cutoff=0.6)
    hint = f" (close: {', '.join(close)})" if close else ""
    raise ConfigError(
        f"unknown transferability score {name!r}{hint}: expected one of {', '.join(SCORES)}"
    )


def check_scores(names: Sequence[str] | None) -> list[str]:
    """Canonical names of ``names`` (``None`` or empty: every score), without duplicates."""
    if not names:
        return list(SCORES)
    return list(dict.fromkeys(get_score(n).name for n in names))
