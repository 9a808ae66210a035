"""``torchvision:NAME[:WEIGHTS]``: torchvision's model zoo.

``torchvision:resnet50`` is randomly initialised; ``torchvision:resnet50:IMAGENET1K_V2`` (or
``:DEFAULT``) loads weights from the torch hub cache (``$TORCH_HOME``), downloading them where
the machine has internet. torchvision loads them with ``weights_only=True``.
"""

from __future__ import annotations

import difflib

from ..errors import ModelSpecError
from ._registry import register_source
from .heads import find_head, head_out_features
from .loaded import LoadedModel, Preprocessing

__all__ = ["load_torchvision"]


def _preprocessing(weights: object | None) -> Preprocessing:
    if weights is None:
        return Preprocessing()
    t = weights.transforms()  # type: ignore[attr-defined]
    crop = int(t.crop_size[0])
    resize = int(t.resize_size[0])
    return Preprocessing(
        mean=tuple(t.mean),
        std=tuple(t.std),
        input_size=(3, crop, crop),
        interpolation=str(t.interpolation.value),
        crop_pct=crop / resize,
    )


@register_source(
    "torchvision",
    help="torchvision model zoo: NAME (random init) or NAME:WEIGHTS (e.g. IMAGENET1K_V2, DEFAULT)",
    example="torchvision:resnet50:IMAGENET1K_V2",
)
def load_torchvision(rest: str, pretrained: bool = True) -> LoadedModel:
    """Build ``torchvision.models.<name>``, with the named weights when ``pretrained``."""
    from .._torchvision import import_torchvision

    tvm = import_torchvision().models

    name, _, weights_name = rest.partition(":")
    available = tvm.list_models()
    if name not in available:
        close = difflib.get_close_matches(name, available, n=5, cutoff=0.6)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ModelSpecError(
            f"unknown torchvision model {name!r}{hint}; see torchvision.models.list_models()"
        )
    weights = None
    if weights_name:
        enum = tvm.get_model_weights(name)
        try:
            weights = enum[weights_name] if weights_name != "DEFAULT" else enum.DEFAULT
        except KeyError:
            valid = ", ".join(w.name for w in enum)
            raise ModelSpecError(
                f"unknown weights {weights_name!r} for torchvision:{name}: expected one of {valid} or DEFAULT"
            ) from None
    try:
        model = tvm.get_model(name, weights=weights if pretrained else None)
    except OSError as exc:  # URLError is an OSError: no cached file and no network
        raise ModelSpecError(
            f"cannot obtain weights {weights_name} for torchvision:{name}: not in the torch hub "
            f"cache and the download failed ({exc}); copy the file into $TORCH_HOME/hub/checkpoints"
        ) from None
    model.eval()
    head = find_head(model)
    num_classes = head_out_features(model, head) if head else None
    arch = f"torchvision:{name}:{weights.name}" if weights is not None else f"torchvision:{name}"
    return LoadedModel(
        model=model,
        spec=f"torchvision:{rest}",
        arch=arch,
        head=head,
        preprocessing=_preprocessing(weights),
        num_classes=num_classes,
        metadata={"weights": weights.name if weights is not None else None},
    )
