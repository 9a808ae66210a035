"""Whether a model carries a trained source classifier (for LEEP and NCE)."""

from __future__ import annotations

from ..models import LoadedModel

__all__ = ["source_head_reason"]


def source_head_reason(model: LoadedModel) -> str | None:
    """``None`` when ``model.head`` is the classifier of its pre-training task, else why not.

    A source head is the pre-trained model's own classifier: the ImageNet head of
    ``bundled:efficientnet_lite*``, of ``torchvision:NAME:WEIGHTS`` and of
    ``timm:NAME:pretrained``. Randomly initialised models, encoders without a head (text
    models), and checkpoints (whose head was trained on the fine-tuning task, or replaced)
    have none.
    """
    spec = model.spec
    if model.modality == "text":
        return "text model: no source classifier"
    if not model.head:
        return "no classifier head"
    if spec.startswith("bundled:"):
        return None
    if spec.startswith("torchvision:"):
        return (
            None
            if model.metadata.get("weights")
            else "randomly initialised: its head is not a trained classifier"
        )
    if spec.startswith("timm:"):
        return (
            None
            if spec.endswith(":pretrained")
            else "randomly initialised: its head is not a trained classifier"
        )
    return "not a pre-trained source model: its head belongs to the task it was trained or fine-tuned on"
