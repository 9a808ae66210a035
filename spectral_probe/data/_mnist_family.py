"""The MNIST family's IDX folders (MNIST, Fashion-MNIST): finding the files, reading, checking.

Both data sets ship as the same four IDX files (``.gz`` or not)::

    train-images-idx3-ubyte   train-labels-idx1-ubyte   t10k-images-idx3-ubyte   t10k-labels-idx1-ubyte

looked for, with a ``ROOT``, in ``ROOT``, ``ROOT/raw`` and ``ROOT/<Folder>/raw`` (torchvision's
layout: ``MNIST/raw``, ``FashionMNIST/raw``); without one, in the data set's system folders
(if any), then ``cache_dir()/<Folder>/raw``, downloading there with torchvision as a last
resort. Parsed arrays are cached per process (keyed by path, modification time and size).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ._base import TensorImageDataset, Transform, check_labels
from .idx import read_idx

__all__ = ["IdxFamily", "cache_dir", "idx_file_names"]

_PREFIX = {"train": "train", "test": "t10k"}


def cache_dir() -> Path:
    """Where downloaded data lives: ``$SPECTRAL_PROBE_CACHE`` or ``~/.cache/spectral-probe``."""
    env = os.environ.get("SPECTRAL_PROBE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "spectral-probe"


def idx_file_names(split: str) -> tuple[str, str]:
    """``(images, labels)`` file names of ``split`` (``train`` or ``test``), without ``.gz``."""
    prefix = _PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_in(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for name in idx_file_names(split):
        candidates = [folder / (name + ext) for ext in (".gz", "")]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    del mtime_ns, size  # part of the cache key only: a changed file is read again
    return read_idx(path)


def _read(path: Path) -> np.ndarray:
    st = path.stat()
    return _read_cached(str(path), st.st_mtime_ns, st.st_size)


@dataclass(frozen=True)
class IdxFamily:
    """One data set of the MNIST family.

    Attributes:
        name: the spec name (``mnist``, ``fashion-mnist``).
        title: the name in messages (``MNIST``, ``Fashion-MNIST``).
        folder: torchvision's folder and class name (``MNIST``, ``FashionMNIST``).
        classes: the class names, index-aligned with the labels.
        hint: where else the files can come from, for the error after a failed download.
    """

    name: str
    title: str
    folder: str
    classes: tuple[str, ...]
    hint: str

    def folders(self, root: Path | None, system: Sequence[Path] = ()) -> list[Path]:
        """The folders looked in, in order (without a root: ``system``, then the cache)."""
        if root is not None:
            return [root, root / "raw", root / self.folder / "raw"]
        return [*system, cache_dir() / self.folder / "raw"]

    def find(self, root: Path | None, split: str, system: Sequence[Path] = ()) -> tuple[Path, Path]:
        """The ``(images, labels)`` IDX files of ``split``, downloading only as a last resort.

        Raises:
            DataError: naming the files expected and every folder looked in.
        """
        folders = self.folders(root, system)
        for folder in folders:
            hit = _find_in(folder, split)
            if hit is not None:
                return hit
        names = " and ".join(n + "[.gz]" for n in idx_file_names(split))
        looked = ", ".join(str(f) for f in folders)
        expected = f"expected {self.title} files {names} in one of: {looked}"
        if root is None:
            why = self._download(cache_dir())
            hit = _find_in(folders[-1], split)
            if hit is not None:
                return hit
            raise DataError(
                f"{expected}; found none, and the download into {folders[-1]} failed: {why} ({self.hint})"
            )
        raise DataError(f"{expected}; found none")

    def _download(self, root: Path) -> str:  # pragma: no cover - needs internet
        """Fetch the raw files with torchvision into ``root/<folder>/raw``; returns why they are not there."""
        import torchvision.datasets

        try:
            for train in (True, False):
                getattr(torchvision.datasets, self.folder)(str(root), train=train, download=True)
        except Exception as exc:  # network errors come in many types
            lines = str(exc).strip().splitlines()
            return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        return "the files did not appear"

    def load_arrays(
        self, root: Path | None, split: str, system: Sequence[Path] = ()
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(images (N, H, W) uint8, labels (N,) int64)``, checked against each other."""
        images_path, labels_path = self.find(root, split, system)
        images, labels = _read(images_path), _read(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(
                f"expected uint8 images of shape (N, H, W) in {images_path}, "
                f"found {images.dtype} of shape {images.shape}"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(
                f"expected {images.shape[0]} labels in {labels_path} (one per image), "
                f"found shape {labels.shape}"
            )
        check_labels(labels, len(self.classes), str(labels_path))
        return images, labels.astype(np.int64)

    def dataset(
        self, images: np.ndarray, labels: np.ndarray, split: str, transform: Transform | None = None
    ) -> TensorImageDataset:
        """``split`` as a :class:`TensorImageDataset` of ``(1, H, W)`` uint8 images."""
        # A copy: the parsed array stays cached and must not change under a caller's feet.
        return TensorImageDataset(
            torch.from_numpy(images.copy()).unsqueeze(1),
            labels.tolist(),
            list(self.classes),
            name=self.name,
            split=split,
            transform=transform,
        )
