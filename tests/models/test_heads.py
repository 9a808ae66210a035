"""Finding and replacing classifier heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spectral_probe.models import find_head, head_in_features, replace_head


def test_find_head_in_sequential_classifier_and_fallbacks():
    import torchvision

    assert find_head(torchvision.models.resnet18()) == "fc"
    assert find_head(torchvision.models.efficientnet_b0()) == "classifier.1"
    assert find_head(torchvision.models.vit_b_16()) == "heads.head"
    assert find_head(nn.Sequential(nn.Conv2d(3, 4, 3))) is None


def test_replace_head_keeps_features_and_changes_outputs():
    import torchvision

    model = torchvision.models.resnet18()
    body = model.layer1[0].conv1.weight.clone()
    name = replace_head(model, 7)
    assert name == "fc" and model.fc.out_features == 7 and head_in_features(model, name) == 512
    assert torch.equal(model.layer1[0].conv1.weight, body)
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 7)


def test_replace_head_errors():
    with pytest.raises(ValueError, match="num_classes >= 1"):
        replace_head(nn.Linear(2, 2), 0, "x")
    with pytest.raises(ValueError, match="classifier head"):
        replace_head(nn.Sequential(nn.ReLU()), 3)
