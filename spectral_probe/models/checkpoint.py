"""Checkpoint files: the toolkit's own format and plain state dicts, loaded safely.

The toolkit's format is a pair of files written atomically side by side:

* ``NAME.safetensors``: the model's ``state_dict`` (shared tensors stored once);
* ``NAME.json``: a sidecar ``{"format": "spectral-probe-checkpoint", "version": 1,
  "base": SPEC, "head": NAME, "num_classes": N, "classes": [...], "modality": ...,
  "preprocessing": {...}, "config": {...}, "aliases": {...}}`` naming the spec that
  rebuilds the architecture and the classifier that replaced the original head.

Any other ``.safetensors``/``.pt``/``.pth``/``.bin`` state dict loads with an explicit
architecture (``arch=SPEC``, the CLI's ``--arch``); the analyses that only read weights read
one that names none as tensors (:mod:`spectral_probe.sources`). Pickled files are read with
``torch.load(weights_only=True)``: a file that needs arbitrary unpickling is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._io import atomic_write_bytes, write_json
from ..errors import CheckpointError
from ..sources.files import torch_load, unwrap_state
from ._empty import assign_state, build_empty, can_assign, has_meta_tensors
from ._registry import load_model, register_checkpoint_format
from .heads import head_out_features, replace_head
from .loaded import LoadedModel, Preprocessing

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_SUFFIXES",
    "save_checkpoint",
    "load_checkpoint",
    "read_state_dict",
    "sidecar_path",
]

CHECKPOINT_FORMAT = "spectral-probe-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar beside a checkpoint: ``NAME.json`` for ``NAME.safetensors``."""
    return Path(path).with_suffix(".json")


def _dedupe(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Store tensors that share memory once; return (tensors, alias -> kept name)."""
    kept: dict[tuple[object, ...], str] = {}  # (storage pointer, offset, shape, strides)
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for name, t in state.items():
        key = (
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
            tuple(t.shape),
            tuple(t.stride()),
        )
        if t.numel() and key in kept:
            aliases[name] = kept[key]
            continue
        kept[key] = name
        tensors[name] = t.detach().to("cpu").contiguous()
    return tensors, aliases


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    base: str,
    head: str | None,
    num_classes: int | None = None,
    classes: list[str] | None = None,
    modality: str = "image",
    preprocessing: Preprocessing | None = None,
    config: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model`` in the toolkit's format (safetensors + JSON sidecar), atomically.

    Args:
        path: the ``.safetensors`` file to write; the sidecar goes beside it.
        model: the module whose ``state_dict`` is saved.
        base: a spec that rebuilds the architecture before its head was replaced.
        head: dotted name of the classifier that was replaced (``None`` if none).
        num_classes: outputs of that head.
        classes: class names, index-aligned with the head's outputs.
        modality: ``"image"`` or ``"text"``.
        preprocessing: the input normalisation to use with this model.
        config: the run configuration (saved verbatim for reproducibility).
    """
    from safetensors.torch import save

    path = Path(path)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"expected a .safetensors path for a checkpoint, found {path.name}")
    tensors, aliases = _dedupe(model.state_dict())
    atomic_write_bytes(path, save(tensors, metadata={"format": CHECKPOINT_FORMAT}))
    sidecar = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "base": base,
        "head": head,
        "num_classes": num_classes,
        "classes": classes,
        "modality": modality,
        "preprocessing": preprocessing.to_dict() if preprocessing else None,
        "config": dict(config or {}),
        "aliases": aliases,
    }
    write_json(sidecar_path(path), sidecar)
    return path


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or (with ``weights_only=True``) ``.pt/.pth/.bin``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint file: {path}")
    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise CheckpointError(
            f"expected a checkpoint ending in {', '.join(CHECKPOINT_SUFFIXES)}, found {path.name}"
        )
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"cannot read {path}: not a complete safetensors file ({str(exc).splitlines()[0]})"
            ) from None
    # the same safe reading as the tensor sources: weights_only, memory-mapped, one-line errors
    state = unwrap_state(torch_load(path), path)
    if all(k.startswith("module.") for k in state):  # saved from DDP / DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _read_sidecar(path: Path) -> dict[str, Any] | None:
    side = sidecar_path(path)
    if path.suffix != ".safetensors" or not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read the sidecar {side}: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        return None
    if meta.get("version", 0) > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {meta['version']}; this spectral-probe reads "
            f"up to {CHECKPOINT_VERSION}: upgrade spectral-probe"
        )
    return meta


def _mismatch(path: Path, missing: list[str], unexpected: list[str], arch: str) -> CheckpointError:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (e.g. {unexpected[0]})")
    return CheckpointError(
        f"checkpoint {path} does not fit architecture {arch}: " + ", ".join(parts)
    )


@register_checkpoint_format(CHECKPOINT_SUFFIXES)
def load_checkpoint(path: str | Path, arch: str | None = None) -> LoadedModel:
    """Load a checkpoint file into the architecture named by its sidecar or ``arch``.

    A head whose width differs from the architecture's (a fine-tuned classifier) is replaced
    to fit. Raises :class:`CheckpointError` (or :class:`UnsafeCheckpointError`) with one line.
    """
    path = Path(path)
    state = read_state_dict(path)
    meta = _read_sidecar(path) or {}
    base = arch or meta.get("base")
    if not base:
        raise CheckpointError(
            f"{path} does not name its architecture (no spectral-probe sidecar {sidecar_path(path).name}); "
            "pass --arch SPEC, e.g. --arch torchvision:resnet50"
        )
    for alias, kept in meta.get("aliases", {}).items():
        if kept in state:
            state[alias] = state[kept]
    # every tensor comes from the file: build without initialising where that gives the same model
    loaded = build_empty(lambda: load_model(base, pretrained=False))
    if loaded is None or not can_assign(loaded.model):
        loaded = load_model(base, pretrained=False)
    model = loaded.model
    head = meta.get("head") or loaded.head
    if head and f"{head}.weight" in state:
        out_features = state[f"{head}.weight"].shape[0]
        current = model.get_submodule(head)
        if getattr(current, "out_features", out_features) != out_features:
            replace_head(model, out_features, head)
    target = model.state_dict()
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if missing or unexpected:
        raise _mismatch(path, missing, unexpected, base)
    for k, v in state.items():
        if v.shape != target[k].shape:
            raise CheckpointError(
                f"checkpoint {path} does not fit {base}: {k} has shape {tuple(v.shape)}, "
                f"expected {tuple(target[k].shape)}"
            )
    if has_meta_tensors(model):
        assign_state(model, state)
    else:
        model.load_state_dict(state)
    model.eval()
    pre = meta.get("preprocessing")
    return LoadedModel(
        model=model,
        spec=str(path),
        arch=base,
        head=head,
        modality=meta.get("modality", loaded.modality),
        preprocessing=Preprocessing.from_dict(pre) if pre else loaded.preprocessing,
        tokenizer=loaded.tokenizer,
        num_classes=head_out_features(model, head) if head else None,
        classes=meta.get("classes"),
        metadata={"sidecar": meta} if meta else {},
    )
