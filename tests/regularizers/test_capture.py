"""FeatureCapture: the head's input is recorded and optionally replaced."""

from __future__ import annotations

import torch
from torch import nn

from spectral_probe.regularizers import FeatureCapture


def test_capture_and_transform() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    x = torch.randn(5, 4)
    with FeatureCapture(model, "1") as cap:
        out = model(x)
    torch.testing.assert_close(cap.features, model[0](x))
    torch.testing.assert_close(out, model(x))
    with FeatureCapture(model, "1", transform=torch.zeros_like) as cap:
        out = model(x)
    torch.testing.assert_close(out, model[1].bias.expand(5, 2))  # the head saw zeros
    assert cap.features is not None and cap.features.abs().sum() > 0  # F before the transform
    cap.remove()
    cap.remove()  # idempotent
    torch.testing.assert_close(model(x), model[1](model[0](x)))


class _Compiled(nn.Module):
    """Stands in for torch.compile's wrapper, which keeps the module as ``_orig_mod``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._orig_mod = module


def test_unwraps_wrappers() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))
    wrapped = _Compiled(model)
    with FeatureCapture(wrapped, "1") as cap:
        model(torch.randn(2, 4))
    assert cap.features is not None and cap.features.shape == (2, 3)
