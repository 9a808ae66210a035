"""spectral.summary against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectral_probe.spectral import (
    effective_rank,
    first_below,
    leading_mean,
    relative_change,
    stable_rank,
    tail_energy,
)


def test_stable_rank():
    s = torch.tensor([2.0, 1.0, 1.0])
    assert stable_rank(s) == pytest.approx((4 + 1 + 1) / 4)
    assert math.isnan(stable_rank(torch.zeros(3)))


def test_effective_rank():
    assert effective_rank(torch.ones(5)) == pytest.approx(5.0)
    assert effective_rank(torch.tensor([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    p = np.array([3.0, 1.0]) / 4
    assert effective_rank(torch.tensor([3.0, 1.0])) == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_relative_change():
    assert relative_change(torch.tensor([3.0, 4.0]), torch.tensor([3.0, 5.0])) == pytest.approx(
        1 / 5
    )


def test_leading_mean_and_first_below():
    cos = torch.tensor([1.0, 0.9, 0.4, float("nan"), 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    assert leading_mean(cos, 0.1) == pytest.approx(0.95)  # ceil(1.1) = 2 entries
    assert leading_mean(cos, 1.0) == pytest.approx(np.nanmean(cos.numpy()))
    assert first_below(cos, 0.5) == 3
    assert first_below(torch.ones(3), 0.5) is None
    with pytest.raises(ValueError, match="fraction"):
        leading_mean(cos, 0.0)


def test_tail_energy():
    s = torch.tensor([3.0, 2.0, 1.0, 1.0])
    assert tail_energy(s, 0.5) == pytest.approx(2 / 15)
