"""Input checks shared by the similarity metrics: two feature matrices on the same samples."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import as_matrix
from ..errors import SpectralProbeError

__all__ = ["DegenerateFeaturesError", "feature_matrix", "centre", "check_pair", "check_spread"]


class DegenerateFeaturesError(SpectralProbeError):
    """Features a similarity is undefined for: constant features, or too few samples."""


def feature_matrix(x: Any, what: str) -> Tensor:
    """``x`` (tensor or array) as a float64 ``(N, d)`` tensor with finite entries, ``d >= 1``."""
    x = as_matrix(x, what, dtype=torch.float64)
    if x.shape[1] == 0:
        raise DegenerateFeaturesError(f"expected at least one feature in {what}, found width 0")
    return x


def check_pair(x: Any, y: Any, *, min_n: int = 2, why: str = "") -> tuple[Tensor, Tensor]:
    """Both matrices as float64 with the same number of rows, at least ``min_n``."""
    x, y = feature_matrix(x, "X"), feature_matrix(y, "Y")
    if x.shape[0] != y.shape[0]:
        raise SpectralProbeError(
            f"expected X and Y with the same samples (rows), found {x.shape[0]} and {y.shape[0]}"
        )
    if x.shape[0] < min_n:
        raise DegenerateFeaturesError(
            f"expected at least {min_n} samples{why}, found N = {x.shape[0]}"
        )
    y = y.to(x.device)
    return x, y


def centre(x: Tensor) -> Tensor:
    """Subtract the column means."""
    return x - x.mean(dim=0, keepdim=True)


def check_spread(total: float, scale: float, what: str) -> None:
    """Raise when the centred energy ``total`` is zero up to rounding relative to ``scale``.

    ``total`` is :math:`\\|X - \\bar X\\|_F^2` and ``scale`` :math:`\\|X\\|_F^2`: every feature
    constant over the samples leaves only rounding behind (relative ``<= 1e-24``).
    """
    if not total > 1e-24 * scale or total <= 0.0:
        raise DegenerateFeaturesError(
            f"expected {what} to vary across samples, found every feature constant"
        )
