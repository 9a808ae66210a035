"""transformers model directories and ``hf:`` hub ids, as tensor sources.

What is read from a directory, first match wins (the index, not a listing, says which file
holds what, as transformers' own loading does):

1. ``adapter_config.json``: a peft adapter (:class:`~spectral_probe.sources.adapter.AdapterSource`);
2. ``model.safetensors.index.json``: sharded safetensors;
3. ``model.safetensors``;
4. ``pytorch_model.bin.index.json``: sharded legacy pickles (``weights_only=True``);
5. ``pytorch_model.bin``;
6. exactly one other weight file (``*.safetensors``, ``*.pt``, ``*.pth``, ``*.bin``, ``*.ckpt``).

``config.json``, when present, is kept as the source's ``config`` (its ``model_type`` tells
GPT-2's ``Conv1D`` layout; ``tie_word_embeddings`` tells an input embedding that doubles as
the output head, noted once).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ModelSpecError
from ._base import BaseSource
from .adapter import AdapterSource, is_adapter_dir
from .files import WEIGHT_SUFFIXES, SafetensorsFile, ShardedSource, TorchFile

__all__ = ["open_directory", "open_hub", "looks_local"]

_ORDER = (
    "model.safetensors.index.json",
    "model.safetensors",
    "pytorch_model.bin.index.json",
    "pytorch_model.bin",
)


def _config(path: Path) -> dict[str, Any]:
    file = path / "config.json"
    if not file.is_file():
        return {}
    try:
        config = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {file}: {exc}") from None
    return config if isinstance(config, dict) else {}


def open_directory(path: str | Path, label: str | None = None) -> BaseSource:
    """A reader for a transformers model (or peft adapter) directory; see the module doc."""
    path = Path(path)
    label = label or str(path)
    if is_adapter_dir(path):
        return AdapterSource(path, label)
    reader: BaseSource | None = None
    for name in _ORDER:
        file = path / name
        if file.is_file():
            if name.endswith(".index.json"):
                reader = ShardedSource(file, label)
            elif file.suffix == ".safetensors":
                reader = SafetensorsFile(file, label)
            else:
                reader = TorchFile(file, label)
            break
    if reader is None:
        found = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES)
        if len(found) != 1:
            listed = ", ".join(p.name for p in sorted(path.iterdir())[:6]) or "nothing"
            raise CheckpointError(
                f"expected model weights in {path} (model.safetensors, its .index.json, "
                f"pytorch_model.bin or adapter_config.json), found {listed}"
                if not found
                else f"expected one weight file in {path}, found {len(found)}: "
                + ", ".join(p.name for p in found[:4])
            )
        from .files import open_file

        reader = open_file(found[0], label)
    config = _config(path)
    reader.config = config
    head = "lm_head.weight"
    names = set(reader.names())
    archs = " ".join(config.get("architectures") or []).lower()
    if (
        config.get("tie_word_embeddings")
        and head not in names
        and ("causallm" in archs or "lmhead" in archs)
    ):
        reader.notes.append(
            "lm_head is tied to the input embedding (tie_word_embeddings): analysed once, as the embedding"
        )
    return reader


def looks_local(name: str) -> bool:
    """Whether a ``hf:`` name is meant as a local path rather than a hub id (``org/name``)."""
    return (
        name.startswith(("/", ".", "~"))
        or os.sep in name.strip("/").replace("/", "", 1)
        or name.count("/") > 1
        or Path(name).suffix in WEIGHT_SUFFIXES
    )


def _offline() -> bool:
    return any(
        os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def open_hub(name: str) -> BaseSource:
    """``hf:NAME``: a local directory, else a hub id from the cache or (online) the hub.

    Fails fast: a name that looks like a local path (``/x``, ``./x``, ``a/b/c``) and does not
    exist is refused without touching the network; offline (``HF_HUB_OFFLINE=1``), only the
    local cache is read.
    """
    label = f"hf:{name}"
    local = Path(name).expanduser()
    if local.exists():
        if not local.is_dir():
            from .files import open_file

            return open_file(local, label)
        return open_directory(local, label)
    if looks_local(name):
        raise ModelSpecError(
            f"expected a model directory or hub id for hf:, found no such path: {name}"
        )
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelSpecError(
            "hf: hub ids need the huggingface_hub package: pip install 'spectral-probe[nlp]'"
        ) from None
    patterns = ["*.json", "*.safetensors"]
    try:
        folder = snapshot_download(name, allow_patterns=patterns, local_files_only=_offline())
    except Exception as exc:
        why = (
            "not in the local cache and the hub is offline (HF_HUB_OFFLINE)"
            if _offline()
            else (str(exc).splitlines()[0][:160])
        )
        raise ModelSpecError(f"cannot read hub model {name!r}: {why}") from None
    return open_directory(folder, label)
