"""Fine-tuning regularizers: L2, L2-SP, DELTA, BSS, TSVD and EWC, by name.

``parse_method("l2-sp+bss", **hparams)`` checks a method string and its hyperparameters
without building anything (a :class:`Method`); ``build_regularizer`` (the same, then
``Method.build``) returns a :class:`RegularizerSet`; the engine
calls ``prepare`` once, captures the head's input with :class:`FeatureCapture` (feeding it
through ``transform_features``), and adds ``penalty``/``forward`` to each step's loss. See
``docs/regularizers.md`` for the formulas, defaults and the engine protocol.

Adding a regularizer: one file with a :class:`Regularizer` subclass decorated with
``@register_regularizer``, plus its import line below.
"""

from __future__ import annotations

from ._base import Regularizer, StepContext
from ._capture import FeatureCapture
from ._registry import (
    Method,
    RegularizerInfo,
    RegularizerSet,
    build_regularizer,
    hyperparameters_of,
    list_regularizers,
    parse_method,
    register_regularizer,
)

# one import line per regularizer (registration happens on import)
from .bss import BSS, bss_penalty, gather_features
from .delta import DELTA, channel_attention
from .ewc import EWC, diagonal_fisher
from .l2 import L2
from .l2_sp import L2SP

# the same maths for hand-written loops: plain modules on tensors and models
from .plain import BatchSpectralShrinkage, DELTAPenalty, EWCPenalty, L2SPPenalty, SpectralTruncation
from .tsvd import TSVD, truncate_spectrum

__all__ = [
    "BSS",
    "DELTA",
    "EWC",
    "L2",
    "L2SP",
    "TSVD",
    "BatchSpectralShrinkage",
    "DELTAPenalty",
    "EWCPenalty",
    "FeatureCapture",
    "L2SPPenalty",
    "Method",
    "Regularizer",
    "RegularizerInfo",
    "RegularizerSet",
    "SpectralTruncation",
    "StepContext",
    "bss_penalty",
    "build_regularizer",
    "channel_attention",
    "diagonal_fisher",
    "gather_features",
    "hyperparameters_of",
    "list_regularizers",
    "parse_method",
    "register_regularizer",
    "truncate_spectrum",
]
