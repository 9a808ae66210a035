"""Model specs: one string names a model everywhere (CLI, configs, reports).

``SOURCE:REST`` dispatches to a registered source (``torchvision``, ``timm``, ``bundled``,
``hf``, ``textcls``, ``mlp``); a file path to the registered checkpoint reader (safetensors
with a sidecar, state dicts). See :func:`load_model` (in the registry, ``_registry``).
"""

from __future__ import annotations

from . import bundled, hf_source, mlp, text_classifier, timm_source, torchvision_source  # noqa: F401  (register sources)
from ._registry import (
    ModelSource,
    get_source,
    is_checkpoint_spec,
    list_sources,
    load_model,
    register_checkpoint_format,
    register_source,
)
from .checkpoint import (
    CHECKPOINT_SUFFIXES,
    load_checkpoint,
    read_state_dict,
    save_checkpoint,
    sidecar_path,
)
from .heads import find_head, head_in_features, replace_head
from .loaded import IMAGENET_MEAN, IMAGENET_STD, LoadedModel, Preprocessing

__all__ = [
    "load_model",
    "is_checkpoint_spec",
    "LoadedModel",
    "Preprocessing",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelSource",
    "register_source",
    "register_checkpoint_format",
    "get_source",
    "list_sources",
    "save_checkpoint",
    "load_checkpoint",
    "read_state_dict",
    "sidecar_path",
    "CHECKPOINT_SUFFIXES",
    "find_head",
    "replace_head",
    "head_in_features",
]
