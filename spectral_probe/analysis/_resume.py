"""Per-layer results kept on disk as they finish, so that a killed run resumes where it stopped.

Each finished layer pair is written atomically (temporary file, then rename) as
``DIR/<sha1 of the run's identity and the layer>.pt``; the identity holds both sources'
labels, file sizes and modification times where they are files, and every option that changes
a number. A rerun with the same identity reads those layers back instead of recomputing them;
anything else misses the cache. Read with ``torch.load(weights_only=True)``: only tensors,
numbers and strings are stored.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_write_bytes
from ..spectral import MatrixComparison

__all__ = ["LayerCache", "clear_store"]


def _plain(value: Any) -> Any:
    """Python scalars for NumPy ones (``weights_only`` loads only plain types)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, torch.Tensor):
        return value.item()
    return value


def _stamp(label: str) -> list[Any]:
    path = Path(label.removeprefix("hf:"))
    files = [path] if path.is_file() else sorted(path.glob("*")) if path.is_dir() else []
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files if f.is_file()]


class LayerCache:
    """Finished layer outcomes of one run, keyed by the run's identity and the layer name."""

    def __init__(self, directory: str | Path, labels: tuple[str, str], options: dict[str, Any]):
        self.directory = Path(directory)
        identity = {
            "labels": labels,
            "files": [_stamp(part) for label in labels for part in label.split(" + ")],
            "options": options,
        }
        self._base = json.dumps(identity, sort_keys=True, default=str)

    def _path(self, name: str) -> Path:
        digest = hashlib.sha1(f"{self._base}\n{name}".encode()).hexdigest()[:20]
        return self.directory / f"{digest}.pt"

    def get(self, name: str) -> tuple[Any, ...] | None:
        """The stored outcome of layer ``name``, or ``None``."""
        path = self._path(name)
        if not path.is_file():
            return None
        try:
            data = torch.load(path, weights_only=True)
        except Exception:  # a file from another version: recompute the layer
            return None
        cmp = MatrixComparison(**data["cmp"]) if data["cmp"] is not None else None
        return data["status"], cmp, data["fits"], data["info"], data["update"]

    def put(self, name: str, outcome: tuple[Any, ...]) -> None:
        """Store the outcome of layer ``name`` atomically."""
        status, cmp, fits, info, update = outcome
        data = {
            "status": status,
            "cmp": None
            if cmp is None
            else {
                k: v.cpu() if isinstance(v, torch.Tensor) else float(v)
                for k, v in vars(cmp).items()
            },
            "fits": _plain(fits),
            "info": _plain(info),
            "update": None if update is None else update.cpu(),
        }
        buffer = io.BytesIO()
        torch.save(data, buffer)
        atomic_write_bytes(self._path(name), buffer.getvalue())

    def clear(self) -> None:
        """Remove the stored layers (after the run's results are written)."""
        clear_store(self.directory)


def clear_store(directory: str | Path) -> None:
    """Remove the layers stored in ``directory``, and the folder once it is empty."""
    directory = Path(directory)
    if directory.is_dir():
        for file in directory.glob("*.pt"):
            file.unlink(missing_ok=True)
        if not any(directory.iterdir()):
            directory.rmdir()
