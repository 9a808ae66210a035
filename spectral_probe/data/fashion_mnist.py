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
parsed arrays are cached per process. The folder logic is shared with ``mnist``
(:mod:`~spectral_probe.data._mnist_family`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._base import TensorImageDataset, Transform
from ._mnist_family import IdxFamily, cache_dir
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

_FAMILY = IdxFamily(
    name="fashion-mnist",
    title="Fashion-MNIST",
    folder="FashionMNIST",
    classes=tuple(FASHION_MNIST_CLASSES),
    hint="install the Debian package dataset-fashion-mnist, or give fashion-mnist:ROOT",
)


def find_fashion_mnist(root: Path | None, split: str) -> tuple[Path, Path]:
    """The ``(images, labels)`` IDX files of ``split``, downloading only as a last resort.

    Raises:
        DataError: naming the files expected and every folder looked in.
    """
    return _FAMILY.find(root, split, [DEBIAN_DIR])


def load_arrays(root: Path | None, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) int64)``, checked against each other."""
    return _FAMILY.load_arrays(root, split, [DEBIAN_DIR])


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
    return _FAMILY.dataset(images, labels, split, transform)
