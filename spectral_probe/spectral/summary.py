"""Scalar summaries of spectra and angle profiles (one number per layer)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "stable_rank",
    "effective_rank",
    "relative_change",
    "leading_mean",
    "first_below",
    "tail_energy",
]


def stable_rank(s: Tensor) -> float:
    """:math:`\\|W\\|_F^2 / \\|W\\|_2^2 = \\sum_i \\sigma_i^2 / \\sigma_1^2` (NaN for a zero matrix)."""
    if s.numel() == 0 or float(s.max()) == 0.0:
        return math.nan
    return float((s**2).sum() / s.max() ** 2)


def effective_rank(s: Tensor) -> float:
    """Roy & Vetterli's effective rank :math:`\\exp(-\\sum_i p_i \\log p_i)`, :math:`p_i = \\sigma_i / \\sum_j \\sigma_j`."""
    total = s.sum()
    if s.numel() == 0 or float(total) == 0.0:
        return math.nan
    p = s[s > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


def relative_change(s_a: Tensor, s_b: Tensor) -> float:
    """:math:`\\|\\sigma^b - \\sigma^a\\|_2 / \\|\\sigma^a\\|_2`."""
    denom = s_a.norm()
    if float(denom) == 0.0:
        return math.nan
    return float((s_b - s_a).norm() / denom)


def leading_mean(values: Tensor, fraction: float = 0.1) -> float:
    """Mean of the first ``max(1, ceil(fraction * n))`` entries (NaN entries ignored)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"expected a fraction in (0, 1], found {fraction}")
    n = values.numel()
    if n == 0:
        return math.nan
    head = values[: max(1, math.ceil(fraction * n))]
    head = head[~torch.isnan(head)]
    return float(head.mean()) if head.numel() else math.nan


def first_below(values: Tensor, threshold: float) -> int | None:
    """1-based index of the first entry below ``threshold``; ``None`` if there is none."""
    hits = torch.nonzero(values < threshold).flatten()
    return int(hits[0]) + 1 if hits.numel() else None


def tail_energy(s: Tensor, fraction: float = 0.5) -> float:
    """Share of :math:`\\sum \\sigma_i^2` held by the smallest ``fraction`` of the singular values."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"expected a fraction in (0, 1], found {fraction}")
    total = (s**2).sum()
    if s.numel() == 0 or float(total) == 0.0:
        return math.nan
    k = max(1, math.floor(fraction * s.numel()))
    tail = torch.sort(s).values[:k]
    return float((tail**2).sum() / total)
