"""Which models the weight analyses read as tensor sources, and opening them.

A model is read as tensors (:mod:`spectral_probe.sources`, no model built) when it is a
:class:`~spectral_probe.sources.TensorSource`, a directory, ``hf:``, a Lightning ``.ckpt``, or a
state-dict file that names no architecture (no spectral-probe sidecar, no ``arch``). The
toolkit's own checkpoints and registered specs (``torchvision:``, ``timm:``, ``bundled:``) keep
the module path, unless the other side of a comparison is read as tensors: then they are read
through their ``state_dict``. No architecture is ever inferred: a file that names none is
paired by its tensor names, its layer kinds read from the tensor shapes
(:data:`~spectral_probe.extract.INFERRED_NOTE`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ConfigError
from ..models import CHECKPOINT_SUFFIXES, LoadedModel, load_model, sidecar_path
from ..sources import (
    AdapterSource,
    BaseSource,
    StateDictSource,
    TensorSource,
    merge_adapter,
    open_source,
)

__all__ = [
    "BLOCKED_ELEMENTS",
    "uses_sources",
    "open_pair",
    "open_one",
    "close_all",
    "is_plain_file",
    "check_split_groups",
]

#: weight-file matrices with at least this many elements are analysed through Grams accumulated
#: from float64 blocks (:func:`spectral_probe.spectral.compare_blocked`,
#: :func:`spectral_probe.spectral.blocked_singular_values`): the same arithmetic as the default
#: ``gram`` method, without a float64 copy of the matrix
BLOCKED_ELEMENTS = 1 << 22

_FILES = (*CHECKPOINT_SUFFIXES, ".ckpt")


def _has_sidecar(path: Path) -> bool:
    side = sidecar_path(path)
    if path.suffix != ".safetensors" or not side.is_file():
        return False
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == "spectral-probe-checkpoint"


def _tensor_only(model: Any) -> bool:
    if isinstance(model, TensorSource):
        return True
    if not isinstance(model, str):
        return False
    path = Path(model).expanduser()
    return model.startswith("hf:") or path.is_dir() or path.suffix == ".ckpt"


def is_plain_file(model: Any, arch: str | None) -> bool:
    """A state-dict file path without a sidecar and without ``arch``."""
    if not isinstance(model, str) or arch is not None:
        return False
    path = Path(model).expanduser()
    return path.suffix in _FILES and not path.is_dir() and not _has_sidecar(path)


def uses_sources(a: Any, b: Any, arch_a: str | None = None, arch_b: str | None = None) -> bool:
    """Whether a comparison of ``a`` and ``b`` reads tensors: when either side is (see the
    module doc)."""
    return any(_tensor_only(m) or is_plain_file(m, arch) for m, arch in ((a, arch_a), (b, arch_b)))


def check_split_groups(split_groups: bool, *sides: tuple[Any, str | None]) -> None:
    """One line for ``split_groups`` on weights read as tensors: a weight file does not record
    a convolution's groups, so there is nothing to split by. ``sides``: ``(model, arch)``."""
    if split_groups:
        files = [getattr(m, "label", m) for m, arch in sides if _read_as_tensors(m, arch)]
        names = " and ".join(dict.fromkeys(files))
        raise ConfigError(
            "expected --split-groups only for models built from a spec or with --arch (a weight "
            f"file does not record a convolution's groups), found it with {names} read as tensors"
        )


def _read_as_tensors(model: Any, arch: str | None) -> bool:
    return _tensor_only(model) or is_plain_file(model, arch)


def open_one(model: Any, arch: str | None = None) -> tuple[BaseSource | TensorSource, bool, bool]:
    """``(source, inferred, opened_here)`` for one model: a source, a spec, a module."""
    if isinstance(model, TensorSource):
        return model, False, False
    if isinstance(model, str) and (_tensor_only(model) or is_plain_file(model, arch)):
        source = open_source(model)
        return source, is_plain_file(model, arch) and not isinstance(source, AdapterSource), True
    import torch.nn as nn

    if isinstance(model, str):
        model = load_model(model, arch=arch)
    if isinstance(model, LoadedModel):
        return StateDictSource(model.model.state_dict(), model.spec), False, True
    if isinstance(model, nn.Module):
        return StateDictSource(model.state_dict(), type(model).__name__), False, True
    raise TypeError(
        f"expected a model spec, LoadedModel, nn.Module or TensorSource, found {type(model).__name__}"
    )


def open_pair(
    a: Any, b: Any, arch_a: str | None = None, arch_b: str | None = None
) -> tuple[Any, Any, list[str], list[Any]]:
    """Both sources (B merged with A when B is a peft adapter), the sides whose layers were
    inferred from a bare state dict, and the sources opened here (to close)."""
    opened: list[Any] = []
    try:
        src_a, inf_a, own_a = open_one(a, arch_a)
        if own_a:
            opened.append(src_a)
        if isinstance(src_a, AdapterSource):
            raise CheckpointError(
                f"expected the base model first and the adapter second, found the adapter "
                f"{src_a.label} as model A"
            )
        src_b, inf_b, own_b = open_one(b, arch_b)
        if own_b:
            opened.append(src_b)
        if isinstance(src_b, AdapterSource):
            src_b = merge_adapter(src_a, src_b)
    except BaseException:
        close_all(opened)
        raise
    inferred = [tag for tag, yes in (("model_a", inf_a), ("model_b", inf_b)) if yes]
    return src_a, src_b, inferred, opened


def close_all(sources: list[Any]) -> None:
    """Close every source in ``sources``."""
    for src in sources:
        src.close()
