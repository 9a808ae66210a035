"""Tiny models for fast engine tests, registered as the model source ``tiny``.

``tiny:cnn`` (a conv stem with BatchNorm, a strided conv, pooled 32-d features, head ``fc``) and
``tiny:mlp`` (no BatchNorm, no dropout: its DDP run equals a one-process run). Their
"pre-trained" weights are a fixed seeded initialisation, so L2-SP has a start point.
Importable in child processes (DDP, SIGTERM, sweep jobs) as ``training._tiny``.
"""

from __future__ import annotations

import torch
from torch import nn

from spectral_probe.models import LoadedModel, Preprocessing, list_sources, register_source


class TinyCNN(nn.Module):
    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(self.pool(x), 1))


class TinyMLP(nn.Module):
    def __init__(self, classes: int = 10, pixels: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(3 * pixels * pixels, 48), nn.ReLU())
        self.fc = nn.Linear(48, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))


_ARCHS = {"cnn": TinyCNN, "mlp": TinyMLP}


def load_tiny(rest: str, pretrained: bool = True) -> LoadedModel:
    name = rest.partition(":")[0]
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(1234)  # the "pre-trained" weights: the same on every call
    try:
        model = _ARCHS[name]()
    finally:
        torch.random.set_rng_state(gen_state)
    model.eval()
    return LoadedModel(
        model=model,
        spec=f"tiny:{rest}",
        arch=f"tiny:{rest}",
        head="fc",
        preprocessing=Preprocessing((0.5,) * 3, (0.5,) * 3, (3, 8, 8)),
        num_classes=10,
    )


if "tiny" not in {s.name for s in list_sources()}:
    register_source("tiny", help="test-only tiny models: cnn, mlp", example="tiny:cnn")(load_tiny)
