"""What every model source returns: the module plus what it takes to use it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

__all__ = ["Preprocessing", "LoadedModel", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """Input normalisation a vision model was trained with.

    Attributes:
        mean: per-channel mean subtracted after scaling pixels to ``[0, 1]``.
        std: per-channel standard deviation divided by.
        input_size: ``(channels, height, width)`` the model was trained at.
        interpolation: the resizing filter it was trained with, as the source states it
            (``"bilinear"``, ``"bicubic"``: timm's ``pretrained_cfg``, torchvision's weight
            transforms; bicubic for EfficientNet-Lite). Feature extraction resizes with it
            (:func:`~spectral_probe.data.transforms.check_interpolation` names the filters).
        crop_pct: centre-crop fraction at test time (resize to ``size / crop_pct`` first).
    """

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    input_size: tuple[int, int, int] = (3, 224, 224)
    interpolation: str = "bilinear"
    crop_pct: float = 0.875

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for checkpoint sidecars and run configs)."""
        return {
            "mean": list(self.mean),
            "std": list(self.std),
            "input_size": list(self.input_size),
            "interpolation": self.interpolation,
            "crop_pct": self.crop_pct,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocessing:
        """Inverse of :meth:`to_dict`."""
        return cls(
            mean=tuple(d["mean"]),  # type: ignore[arg-type]
            std=tuple(d["std"]),  # type: ignore[arg-type]
            input_size=tuple(d["input_size"]),  # type: ignore[arg-type]
            interpolation=str(d.get("interpolation", "bilinear")),
            crop_pct=float(d.get("crop_pct", 0.875)),
        )


@dataclass
class LoadedModel:
    """A model resolved from a spec string.

    Attributes:
        model: the ``nn.Module``, on CPU, in eval mode.
        spec: the spec string it was loaded from (a path for checkpoints).
        arch: a spec that rebuilds the same architecture (``base`` in checkpoint sidecars).
        head: dotted name of the classifier ``nn.Linear`` whose input is the pooled feature
            vector, or ``None`` for a bare encoder.
        modality: ``"image"`` or ``"text"``.
        preprocessing: how images must be normalised (vision models).
        tokenizer: the tokenizer (text models).
        num_classes: outputs of the head, if any.
        classes: class names, when known (e.g. from a toolkit checkpoint).
        metadata: anything else the source knows (weights name, sidecar content...).
    """

    model: nn.Module
    spec: str
    arch: str
    head: str | None
    modality: Literal["image", "text"] = "image"
    preprocessing: Preprocessing | None = None
    tokenizer: Any = None
    num_classes: int | None = None
    classes: list[str] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
