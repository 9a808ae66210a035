"""Fashion-MNIST (``fashion-mnist[:ROOT]``): 60,000 + 10,000 grayscale 28×28 images, 10 classes.

Where the files are looked for, in order:

1. ``ROOT`` when the spec gives one: the four IDX files (``.gz`` or not) in ``ROOT``,
   ``ROOT/raw`` or ``ROOT/FashionMNIST/raw`` (torchvision's layout).
2. Without a root: the Debian package ``dataset-fashion-mnist`` at
   ``/usr/share/datasets/fashion-mnist``, read directly (gzip IDX);
3. then a torchvision root in the cache directory (``$SPECTRAL_PROBE_CACHE`` or
   ``~/.cache/spectral-probe``), downloading there with torchvision when the machine has
   internet.

The images are held in memory as one ``uint8`` tensor (a :class:`TensorImageDataset`);
parsed arrays are cached per process.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from ..errors import DataError
from ._base import TensorImageDataset, Transform, check_labels
from .idx import read_idx
from .spec import register_dataset

__all__ = [
    "FASHION_MNIST_CLASSES",
    "DEBIAN_DIR",
    "cache_dir",
    "find_fashion_mnist",
    "load_arrays",
    "load_fashion_mnist",
]

FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

_PREFIX = {"train": "train", "test": "t10k"}


def cache_dir() -> Path:
    """Where downloaded data lives: ``$SPECTRAL_PROBE_CACHE`` or ``~/.cache/spectral-probe``."""
    env = os.environ.get("SPECTRAL_PROBE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "spectral-probe"


def _file_names(split: str) -> tuple[str, str]:
    prefix = _PREFIX[split]
    return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"


def _find_in(folder: Path, split: str) -> tuple[Path, Path] | None:
    found = []
    for name in _file_names(split):
        candidates = [folder / (name + ext) for ext in (".gz", "")]
        hit = next((p for p in candidates if p.is_file()), None)
        if hit is None:
            return None
        found.append(hit)
    return found[0], found[1]


def find_fashion_mnist(root: Path | None, split: str) -> tuple[Path, Path]:
    """The ``(images, labels)`` IDX files of ``split``, downloading only as a last resort.

    Raises:
        DataError: naming the files expected and every folder looked in.
    """
    folders = (
        [root, root / "raw", root / "FashionMNIST" / "raw"]
        if root is not None
        else [DEBIAN_DIR, cache_dir() / "FashionMNIST" / "raw"]
    )
    for folder in folders:
        hit = _find_in(folder, split)
        if hit is not None:
            return hit
    if root is None:
        _download(cache_dir())
        hit = _find_in(cache_dir() / "FashionMNIST" / "raw", split)
        if hit is not None:
            return hit
    names = " and ".join(n + "[.gz]" for n in _file_names(split))
    looked = ", ".join(str(f) for f in folders)
    raise DataError(f"expected Fashion-MNIST files {names} in one of: {looked}; found none")


def _download(root: Path) -> None:  # pragma: no cover - needs internet
    """Fetch the raw files with torchvision into ``root/FashionMNIST/raw``."""
    from torchvision.datasets import FashionMNIST

    try:
        for train in (True, False):
            FashionMNIST(str(root), train=train, download=True)
    except Exception as exc:  # network errors come in many types
        raise DataError(
            f"expected Fashion-MNIST locally (Debian package dataset-fashion-mnist, or "
            f"fashion-mnist:ROOT) or a download into {root}, found neither: {exc}"
        ) from None


@functools.lru_cache(maxsize=4)
def _read_cached(path: str, mtime_ns: int, size: int) -> np.ndarray:
    del mtime_ns, size  # part of the cache key only: a changed file is read again
    return read_idx(path)


def _read(path: Path) -> np.ndarray:
    st = path.stat()
    return _read_cached(str(path), st.st_mtime_ns, st.st_size)


def load_arrays(root: Path | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) int64)``, checked against each other."""
    images_path, labels_path = find_fashion_mnist(root, split)
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
    check_labels(labels, len(FASHION_MNIST_CLASSES), str(labels_path))
    return images, labels.astype(np.int64)


@register_dataset(
    "fashion-mnist",
    kind="image",
    root="optional",
    usage="fashion-mnist[:/path/with/idx/files]",
    summary="Fashion-MNIST, 28x28 grayscale, 10 classes; Debian package, IDX folder "
    "or torchvision root",
)
def load_fashion_mnist(
    root: Path | None, split: str, transform: Transform | None = None
) -> TensorImageDataset:
    """Fashion-MNIST ``split`` as a :class:`TensorImageDataset` of ``(1, 28, 28)`` uint8 images."""
    images, labels = load_arrays(root, split)
    # A copy: the parsed array stays cached and must not change under a caller's feet.
    return TensorImageDataset(
        torch.from_numpy(images.copy()).unsqueeze(1),
        labels.tolist(),
        FASHION_MNIST_CLASSES,
        name="fashion-mnist",
        split=split,
        transform=transform,
    )
