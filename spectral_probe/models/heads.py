"""Finding and replacing a network's classifier head.

The head is the final ``nn.Linear`` whose input is the pooled feature vector ``f`` of the
paper (ResNet-50: 2048-d). Fine-tuning replaces it; feature extraction and BSS read its input.
"""

from __future__ import annotations

import contextlib

from torch import nn

__all__ = ["find_head", "replace_head", "head_in_features", "head_out_features"]

_KNOWN = ("fc", "classifier", "heads.head", "head.fc", "head", "last_linear")


def _get(model: nn.Module, name: str) -> nn.Module | None:
    try:
        return model.get_submodule(name)
    except AttributeError:
        return None


def _last_linear(module: nn.Module, prefix: str) -> str | None:
    if isinstance(module, nn.Linear):
        return prefix
    last = None
    for name, sub in module.named_modules():
        if isinstance(sub, nn.Linear):
            last = f"{prefix}.{name}" if name else prefix
    return last


def find_head(model: nn.Module) -> str | None:
    """Dotted name of the classifier ``nn.Linear``, or ``None`` if there is none.

    Uses timm's ``pretrained_cfg["classifier"]`` when present, then the attribute names
    torchvision and transformers use (``fc``, ``classifier``, ``heads.head``, ...).
    """
    cfg = getattr(model, "pretrained_cfg", None)
    if isinstance(cfg, dict) and cfg.get("classifier"):
        mod = _get(model, cfg["classifier"])
        if mod is not None:
            found = _last_linear(mod, cfg["classifier"])
            if found:
                return found
    for name in _KNOWN:
        mod = _get(model, name)
        if mod is not None:
            found = _last_linear(mod, name)
            if found:
                return found
    return None


def head_in_features(model: nn.Module, head: str) -> int:
    """Input width ``d`` of the head ``nn.Linear`` (the feature dimension)."""
    mod = model.get_submodule(head)
    if not isinstance(mod, nn.Linear):
        raise TypeError(f"expected the head {head!r} to be nn.Linear, found {type(mod).__name__}")
    return mod.in_features


def head_out_features(model: nn.Module, head: str) -> int | None:
    """Output width of the head (its ``out_features``: the number of classes), None if it has none."""
    out = getattr(model.get_submodule(head), "out_features", None)
    return None if out is None else int(out)


def replace_head(model: nn.Module, num_classes: int, head: str | None = None) -> str:
    """Replace the classifier by a fresh ``nn.Linear(d, num_classes)``; return its name.

    The new head is initialised as ``nn.Linear`` does by default (the caller seeds).
    """
    if num_classes < 1:
        raise ValueError(f"expected num_classes >= 1, found {num_classes}")
    head = head or find_head(model)
    if head is None:
        raise ValueError(
            f"expected a model with a classifier head, found none in {type(model).__name__}"
        )
    old = model.get_submodule(head)
    if not isinstance(old, nn.Linear):
        raise TypeError(f"expected the head {head!r} to be nn.Linear, found {type(old).__name__}")
    new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    new = new.to(device=old.weight.device, dtype=old.weight.dtype)
    model.set_submodule(head, new)
    if hasattr(model, "num_classes"):
        with contextlib.suppress(AttributeError, TypeError):
            model.num_classes = num_classes  # type: ignore[assignment]  # timm's int attribute
    return head
