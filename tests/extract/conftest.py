"""Models shared by the feature tests of extract (built once per test module)."""

from __future__ import annotations

import pytest
import torch

from spectral_probe.models import load_model


@pytest.fixture(scope="module")
def resnet():
    torch.manual_seed(0)
    return load_model("torchvision:resnet18")


@pytest.fixture(scope="module")
def minilm():
    return load_model("bundled:minilm-l6")
