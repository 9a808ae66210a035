"""Optimizer parameter groups (new head at ``head_lr_ratio`` x the backbone) and precision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..errors import ConfigError

if TYPE_CHECKING:
    from .config import FinetuneConfig

__all__ = ["build_optimizer", "amp_dtype", "use_channels_last"]


def build_optimizer(config: FinetuneConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """SGD (or AdamW) over ``groups`` from :meth:`RegularizerSet.param_groups`.

    Head groups get ``lr``, the others ``lr / head_lr_ratio``; every group's weight decay is
    the method's (optimizer-side ``l2``) plus ``config.weight_decay``, except that a group
    marked ``"no_decay": True`` (by :meth:`Task.param_groups`, e.g. BERT's biases and
    LayerNorm weights) does not take ``config.weight_decay``. Each group keeps its
    ``initial_lr``, which the schedule multiplies.
    """
    lr = float(config.lr)  # type: ignore[arg-type]
    out = []
    for g in groups:
        base = lr if g.get("head") else lr / float(config.head_lr_ratio)  # type: ignore[arg-type]
        extra = 0.0 if g.get("no_decay") else float(config.weight_decay)  # type: ignore[arg-type]
        out.append(
            {
                **g,
                "lr": base,
                "initial_lr": base,
                "weight_decay": float(g.get("weight_decay", 0.0)) + extra,
            }
        )
    if not out or not any(g["params"] for g in out):
        raise ConfigError("expected trainable parameters in the model, found none")
    if config.optimizer == "sgd":
        return torch.optim.SGD(
            out,
            lr=lr,
            momentum=float(config.momentum),  # type: ignore[arg-type]
            nesterov=bool(config.nesterov),
        )
    if config.optimizer == "adamw":
        return torch.optim.AdamW(out, lr=lr, betas=(float(config.momentum), 0.999))  # type: ignore[arg-type]
    raise ConfigError(f"expected optimizer sgd or adamw, found {config.optimizer!r}")


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: ``None`` on CPU or with ``off``; ``auto`` prefers bfloat16."""
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "fp16":
        return torch.float16
    if setting == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def use_channels_last(
    setting: str, device: torch.device, modality: str, model: torch.nn.Module | None = None
) -> bool:
    """``auto``: channels-last memory format for image models on CUDA, and on CPU for models
    with depthwise convolutions (oneDNN's channels-last depthwise kernels: EfficientNet-Lite0
    at 64 px trains ~1.5x faster on CPU, without its multi-second first steps; ResNets gain
    nothing on CPU, so they stay contiguous there)."""
    if setting == "on":
        return True
    if setting == "off" or modality != "image":
        return False
    if device.type == "cuda":
        return True
    return model is not None and any(
        isinstance(m, torch.nn.Conv2d) and m.groups > 1 and m.groups == m.in_channels
        for m in model.modules()
    )
