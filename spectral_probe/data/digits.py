"""scikit-learn's bundled handwritten digits (``digits``): 1,797 grayscale 8×8 images, 10 classes.

The data set has no official split. ``test`` is a fixed stratified quarter of each class
(``split_train_val(targets, 0.25, seed=0)``) and ``train`` the rest, the same on every
machine. Pixel values 0..16 are scaled to 0..255 ``uint8``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ._base import TensorImageDataset, Transform
from .sampling import split_train_val
from .spec import register_dataset

__all__ = ["DIGITS_CLASSES", "DIGITS_TEST_FRACTION", "load_digits"]

DIGITS_CLASSES = [str(d) for d in range(10)]
DIGITS_TEST_FRACTION = 0.25


@functools.lru_cache(maxsize=1)
def _arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    return images, bunch.target.astype(np.int64)


@register_dataset(
    "digits",
    kind="image",
    root="none",
    usage="digits",
    summary="scikit-learn load_digits, 8x8 grayscale, 10 classes; fixed stratified 75/25 split",
)
def load_digits(
    root: Path | None, split: str, transform: Transform | None = None
) -> TensorImageDataset:
    """The digits ``split`` as a :class:`TensorImageDataset` of ``(1, 8, 8)`` uint8 images."""
    del root  # takes none; the spec parser refuses one
    images, labels = _arrays()
    train_idx, test_idx = split_train_val(labels, DIGITS_TEST_FRACTION, seed=0)
    idx = train_idx if split == "train" else test_idx
    return TensorImageDataset(
        torch.from_numpy(images[idx]).unsqueeze(1),
        labels[idx].tolist(),
        DIGITS_CLASSES,
        name="digits",
        split=split,
        transform=transform,
    )
