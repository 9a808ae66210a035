"""``timm:NAME[:pretrained]``: any model of the timm library.

``timm:resnet50`` is randomly initialised; ``timm:resnet50.a1_in1k:pretrained`` loads the
pretrained weights from the Hugging Face hub cache (or downloads them where possible).
"""

from __future__ import annotations

import difflib

from ..errors import ModelSpecError
from ._registry import register_source
from .heads import find_head, head_out_features
from .loaded import LoadedModel, Preprocessing

__all__ = ["load_timm", "timm_preprocessing"]


def timm_preprocessing(model: object) -> Preprocessing:
    """timm's resolved data config as a :class:`Preprocessing`."""
    import timm.data

    cfg = timm.data.resolve_data_config({}, model=model)
    return Preprocessing(
        mean=tuple(cfg["mean"]),
        std=tuple(cfg["std"]),
        input_size=tuple(cfg["input_size"]),
        interpolation=str(cfg.get("interpolation", "bilinear")),
        crop_pct=float(cfg.get("crop_pct", 0.875)),
    )


@register_source(
    "timm",
    help="timm models: NAME (random init) or NAME:pretrained (hub cache or download)",
    example="timm:resnet50.a1_in1k:pretrained",
)
def load_timm(rest: str, pretrained: bool = True) -> LoadedModel:
    """Build ``timm.create_model(name, pretrained=...)``."""
    import timm

    name, _, flag = rest.partition(":")
    if flag not in ("", "pretrained"):
        raise ModelSpecError(f"expected timm:NAME or timm:NAME:pretrained, found timm:{rest}")
    base = name.split(".")[0]
    if not timm.is_model(base):
        close = difflib.get_close_matches(base, timm.list_models(), n=5, cutoff=0.6)
        hint = f" (close: {', '.join(close)})" if close else ""
        raise ModelSpecError(f"unknown timm model {name!r}{hint}")
    try:
        model = timm.create_model(name, pretrained=bool(flag) and pretrained)
    except (OSError, RuntimeError) as exc:
        raise ModelSpecError(
            f"cannot load pretrained weights for timm:{name}: {exc}".splitlines()[0]
        ) from None
    model.eval()
    head = find_head(model)
    return LoadedModel(
        model=model,
        spec=f"timm:{rest}",
        arch=f"timm:{rest}",
        head=head,
        preprocessing=timm_preprocessing(model),
        num_classes=head_out_features(model, head) if head else None,
    )
