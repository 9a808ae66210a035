"""CLI test helpers: a runner that keeps stderr apart and a perturbed bundled checkpoint."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from spectral_probe.models import load_model, replace_head, save_checkpoint


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread: None) -> None:
    """CLI tests run small models: one torch thread is fastest (and safe on a shared machine)."""


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def perturbed_lite0(tmp_path_factory: pytest.TempPathFactory):
    """The bundled EfficientNet-Lite0 with a 1e-3 relative perturbation and a new 10-class head."""
    lm = load_model("bundled:efficientnet_lite0")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in lm.model.parameters():
            p.add_(1e-3 * p.std() * torch.randn(p.shape, generator=gen))
    replace_head(lm.model, 10)
    path = tmp_path_factory.mktemp("ft") / "model.safetensors"
    save_checkpoint(
        path,
        lm.model,
        base="bundled:efficientnet_lite0",
        head="classifier",
        num_classes=10,
        preprocessing=lm.preprocessing,
    )
    return path
