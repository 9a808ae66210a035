"""Tensor sources: named weight tensors read lazily from files, never a model.

A :class:`TensorSource` lists canonical tensor names in depth order and loads one tensor at a
time from a memory map, so the weight analyses (``compare-weights``, ``layers``, ``--esd``)
hold one tensor pair at a time, whatever the model's size. :func:`open_source` turns what a
user names into a source:

* a transformers directory (single or sharded safetensors, single or sharded
  ``pytorch_model.bin``; :mod:`~spectral_probe.sources.directory`);
* a state-dict file (``.safetensors``, ``.pt``, ``.pth``, ``.bin``, Lightning ``.ckpt``;
  :mod:`~spectral_probe.sources.files`);
* a peft LoRA adapter directory (:mod:`~spectral_probe.sources.adapter`; merge it into a base
  with :func:`merge_adapter`);
* ``hf:PATH_OR_ID`` (a local directory or a hub id).

Names are canonical (:func:`canonical_name`): the wrappers of ``torch.compile``, DDP,
Lightning, peft and transformers' task heads are stripped, so the same weight pairs across them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from ..errors import CheckpointError
from ._base import BaseSource
from ._names import WRAPPERS, canonical_name, depth_key
from .adapter import AdapterSource, LoraFactors, MergedSource, is_adapter_dir, merge_adapter
from .directory import open_directory, open_hub
from .files import (
    WEIGHT_SUFFIXES,
    SafetensorsFile,
    ShardedSource,
    StateDictSource,
    TorchFile,
    open_file,
)

__all__ = [
    "TensorSource",
    "open_source",
    "is_source_spec",
    "canonical_name",
    "depth_key",
    "WRAPPERS",
    "WEIGHT_SUFFIXES",
    "BaseSource",
    "SafetensorsFile",
    "TorchFile",
    "ShardedSource",
    "StateDictSource",
    "AdapterSource",
    "MergedSource",
    "LoraFactors",
    "merge_adapter",
    "is_adapter_dir",
]


@runtime_checkable
class TensorSource(Protocol):
    """Named tensors, read one at a time.

    Attributes:
        label: what the user named (a path, ``hf:ID``).
    """

    label: str

    def names(self) -> list[str]:
        """Canonical tensor names, in depth order."""
        ...

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of one tensor (from the header; nothing is loaded)."""
        ...

    def dtype(self, name: str) -> torch.dtype:
        """dtype of one tensor, as stored."""
        ...

    def load(self, name: str) -> torch.Tensor:
        """One tensor, as stored (memory-mapped where the format allows)."""
        ...

    def close(self) -> None:
        """Release file handles (the readers of :func:`open_source` are also context managers)."""
        ...


def is_source_spec(spec: str) -> bool:
    """Whether ``spec`` names something :func:`open_source` reads (``hf:``, a directory,
    a weight file) rather than a registered model source (``torchvision:...``)."""
    if spec.startswith("hf:"):
        return True
    path = Path(spec).expanduser()
    return path.is_dir() or path.suffix in WEIGHT_SUFFIXES


def open_source(spec: str) -> BaseSource:
    """Open what ``spec`` names as a :class:`TensorSource` (see the module doc).

    Raises :class:`~spectral_probe.errors.CheckpointError` (or ``ModelSpecError``) with one
    line: a missing path, a directory without weights, an index naming a missing shard, a
    truncated file, a pickle that needs code, one shard of a sharded model.

    Example:
        >>> import tempfile, torch
        >>> from safetensors.torch import save_file
        >>> d = tempfile.mkdtemp()
        >>> save_file({"model.layers.1.w.weight": torch.ones(2, 2),
        ...            "model.layers.0.w.weight": torch.ones(2, 2)}, f"{d}/m.safetensors")
        >>> with open_source(f"{d}/m.safetensors") as src:
        ...     src.names()
        ['layers.0.w.weight', 'layers.1.w.weight']
    """
    if spec.startswith("hf:"):
        return open_hub(spec[3:])
    path = Path(spec).expanduser()
    if path.is_dir():
        return open_directory(path, spec)
    if not path.exists():
        raise CheckpointError(f"no such checkpoint file or model directory: {spec}")
    if path.stem == "adapter_model" and is_adapter_dir(path.parent):
        return AdapterSource(path.parent, spec)  # the weights file of an adapter: the adapter
    return open_file(path, spec)
