"""Transferability scores: how well a pre-trained model's features or source head suit a task.

Pure functions on NumPy arrays or torch tensors (``features (N, D)``, ``labels (N,)``; LEEP and
NCE take the source classifier's outputs), one module per score, and a registry
(:data:`SCORES`) that the ``rank-models`` command, the docs and the tests iterate over.
:func:`rank_models` extracts each model's features once and runs every score on them.
"""

from ._registry import SCORES, Score, check_scores, get_score, list_scores
from .h_score import h_score
from .leep import leep
from .logme import logme
from .nce import nce
from .rank import ModelOutputs, ModelRanking, model_outputs, rank_models, score_outputs
from .regularized_h_score import regularized_h_score
from .sfda import sfda
from .transrate import transrate

__all__ = [
    "logme",
    "leep",
    "nce",
    "h_score",
    "regularized_h_score",
    "transrate",
    "sfda",
    "Score",
    "SCORES",
    "list_scores",
    "get_score",
    "check_scores",
    "ModelOutputs",
    "ModelRanking",
    "model_outputs",
    "score_outputs",
    "rank_models",
]
