"""Input checks shared by the scores: features as float64 matrices, labels as ``0..C-1``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._checks import as_matrix
from ..errors import DataError

__all__ = ["encode_labels", "features_and_labels", "one_hot"]


def encode_labels(
    labels: Any, n: int, *, what: str = "labels", min_classes: int = 2
) -> tuple[Tensor, int]:
    """Class labels of any hashable kind as ``0..C-1`` (sorted order) and ``C``.

    Raises:
        DataError: not one label per sample, or fewer than ``min_classes`` classes.
    """
    arr = labels.detach().cpu().numpy() if isinstance(labels, Tensor) else np.asarray(labels)
    if arr.ndim != 1:
        raise DataError(f"expected {what} of shape (N,), found shape {arr.shape}")
    if len(arr) != n:
        raise DataError(f"expected one of the {what} per sample ({n}), found {len(arr)}")
    classes, inverse = np.unique(arr, return_inverse=True)
    if len(classes) < min_classes:
        raise DataError(f"expected {what} of at least {min_classes} classes, found {len(classes)}")
    return torch.as_tensor(inverse.reshape(-1), dtype=torch.int64), len(classes)


def one_hot(y: Tensor, c: int, like: Tensor) -> Tensor:
    """``(N, C)`` indicator matrix of ``y`` with the dtype and device of ``like``."""
    out = torch.zeros(len(y), c, dtype=like.dtype, device=like.device)
    out[torch.arange(len(y), device=like.device), y.to(like.device)] = 1.0
    return out


def features_and_labels(features: Any, labels: Any) -> tuple[Tensor, Tensor, int]:
    """Checked ``(features float64 (N, D), labels 0..C-1 on the same device, C)``.

    Raises:
        DataError: wrong shapes, non-finite values, labels and features of different
            lengths, fewer than 2 classes, or features that are the same for every sample
            (no score can tell anything from them).
    """
    f = as_matrix(features, dtype=torch.float64)
    y, c = encode_labels(labels, f.shape[0])
    if f.shape[1] == 0:
        raise DataError("expected at least one feature dimension, found 0")
    same = (
        bool((f.numpy() == f.numpy()[:1]).all())
        if f.device.type == "cpu"
        else bool((f == f[:1]).all())
    )
    if same:
        raise DataError(
            "expected features that vary across samples, found the same vector for every sample"
        )
    return f, y.to(f.device), c
