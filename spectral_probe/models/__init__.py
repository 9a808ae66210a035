"""Model specs: one string names a model everywhere (CLI, configs, reports).

``SOURCE:REST`` dispatches to a registered source (``torchvision``, ``timm``, ``bundled``,
``hf``); anything else is read as a checkpoint path. See :func:`load_model`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelSpecError
from . import bundled, hf_source, mlp, text_classifier, timm_source, torchvision_source  # noqa: F401  (register sources)
from ._registry import ModelSource, get_source, list_sources, register_source, set_spec_loader
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


def is_checkpoint_spec(spec: str) -> bool:
    """Whether ``spec`` names a file rather than ``SOURCE:REST``."""
    source = spec.partition(":")[0]
    if ":" in spec and source in {s.name for s in list_sources()}:
        return False
    return Path(spec).suffix in CHECKPOINT_SUFFIXES or Path(spec).exists()


def load_model(
    spec: str, *, arch: str | None = None, pretrained: bool = True, infer_arch: bool = False
) -> LoadedModel:
    """Resolve a model spec string to a :class:`LoadedModel` (on CPU, eval mode).

    Args:
        spec: ``torchvision:NAME[:WEIGHTS]``, ``timm:NAME[:pretrained]``, ``bundled:NAME``,
            ``hf:PATH_OR_ID``, or a checkpoint path (``.safetensors``/``.pt``/``.pth``/``.bin``).
        arch: for a checkpoint without a spectral-probe sidecar, the spec of its architecture.
        pretrained: ``False`` builds the architecture only (random initialisation).
        infer_arch: for a checkpoint that names no architecture (no sidecar, no ``arch``),
            infer one from its tensor shapes instead of raising; only for analyses that read
            weights and never run the model (see :mod:`spectral_probe.models.inferred`).

    Example:
        >>> load_model("torchvision:resnet18", pretrained=False).head
        'fc'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"expected a model spec such as torchvision:resnet50, found {spec!r}")
    spec = spec.strip()
    if is_checkpoint_spec(spec):
        return load_checkpoint(spec, arch=arch, infer_arch=infer_arch)
    source, sep, rest = spec.partition(":")
    if not sep or not rest:
        known = ", ".join(s.name for s in list_sources())
        raise ModelSpecError(
            f"unknown model spec {spec!r}: expected SOURCE:NAME with SOURCE one of {known}, "
            "or a checkpoint path (.safetensors, .pt, .pth)"
        )
    return get_source(source).load(rest, pretrained)


set_spec_loader(load_model)  # checkpoints and textcls: resolve the specs they name through it
