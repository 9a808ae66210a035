"""Small models and an engine-like step shared by the regularizer tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from spectral_probe.regularizers import FeatureCapture, StepContext


class ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += x
        return self.relu(out)


class TinyNet(nn.Module):
    """A ResNet in miniature: stem, a residual stage, a strided stage, pooled 8-d features."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = ResBlock(4)
        self.layer2 = nn.Sequential(nn.Conv2d(4, 8, 3, stride=2, padding=1), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def make_batches(
    n: int = 2, b: int = 6, classes: int = 3, seed: int = 0
) -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(b, 3, 8, 8, generator=g), torch.randint(0, classes, (b,), generator=g))
        for _ in range(n)
    ]


def tiny_net(seed: int = 0) -> TinyNet:
    torch.manual_seed(seed)
    net = TinyNet()
    with torch.no_grad():  # non-trivial running statistics for eval-mode checks
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
    return net


def step(model: nn.Module, reg, x: Tensor, y: Tensor, head: str = "fc") -> tuple[Tensor, dict]:
    """One engine-like step: capture F through the pre-hook, task loss plus penalty."""
    with FeatureCapture(model, head, reg.transform_features) as cap:
        logits = model(x)
    ctx = StepContext(model, head, x, y, logits, cap.features)
    total, parts = reg(ctx)
    loss = nn.functional.cross_entropy(logits, y) + total
    return loss, parts
