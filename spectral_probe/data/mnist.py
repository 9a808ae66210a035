"""MNIST (``mnist[:ROOT]``): 60,000 + 10,000 grayscale 28×28 handwritten digits, classes "0".."9".

Where the files are looked for, in order:

1. ``ROOT`` when the spec gives one: the four IDX files (``train-images-idx3-ubyte``,
   ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``,
   ``.gz`` or not) in ``ROOT``, ``ROOT/raw`` or ``ROOT/MNIST/raw`` (torchvision's layout);
2. without a root: a torchvision root in the cache directory (``cache_dir()/MNIST/raw``:
   ``$SPECTRAL_PROBE_CACHE`` or ``~/.cache/spectral-probe``), downloading there with
   torchvision when the machine has internet.

The same files and layout as Fashion-MNIST (:mod:`~spectral_probe.data._mnist_family`); the
images are held in memory as one ``uint8`` tensor, parsed arrays cached per process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import TensorImageDataset, Transform
from ._mnist_family import IdxFamily
from .spec import register_dataset

__all__ = ["MNIST_CLASSES", "find_mnist", "load_mnist_arrays", "load_mnist"]

MNIST_CLASSES = [str(d) for d in range(10)]

_FAMILY = IdxFamily(
    name="mnist",
    title="MNIST",
    folder="MNIST",
    classes=tuple(MNIST_CLASSES),
    hint="give mnist:ROOT, a folder holding the four IDX files",
)


def find_mnist(root: Path | None, split: str) -> tuple[Path, Path]:
    """The ``(images, labels)`` IDX files of ``split``, downloading only as a last resort.

    Raises:
        DataError: naming the files expected and every folder looked in.
    """
    return _FAMILY.find(root, split)


def load_mnist_arrays(root: Path | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) int64)``, checked against each other."""
    return _FAMILY.load_arrays(root, split)


@register_dataset(
    "mnist",
    kind="image",
    root="optional",
    usage="mnist[:/path/with/idx/files]",
    summary="MNIST, 28x28 grayscale digits, 10 classes; IDX folder or torchvision root "
    "(download into the cache as a last resort)",
)
def load_mnist(
    root: Path | None, split: str, transform: Transform | None = None
) -> TensorImageDataset:
    """MNIST ``split`` as a :class:`TensorImageDataset` of ``(1, 28, 28)`` uint8 images."""
    images, labels = load_mnist_arrays(root, split)
    return _FAMILY.dataset(images, labels, split, transform)
