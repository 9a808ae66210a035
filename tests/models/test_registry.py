"""models._registry: load_model dispatches specs to sources and paths to the checkpoint reader."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from spectral_probe.errors import CheckpointError
from spectral_probe.models import (
    CHECKPOINT_SUFFIXES,
    LoadedModel,
    _registry,
    is_checkpoint_spec,
    load_checkpoint,
    load_model,
    register_checkpoint_format,
)


def test_the_checkpoint_reader_is_registered_for_its_suffixes(tmp_path: Path):
    assert any(fn is load_checkpoint for _, fn in _registry._FILES)
    assert all(is_checkpoint_spec(f"runs/x/model{s}") for s in CHECKPOINT_SUFFIXES)
    assert not is_checkpoint_spec("runs/x/model.toy")
    path = tmp_path / "plain.pt"
    torch.save(nn.Linear(2, 2).state_dict(), path)
    with pytest.raises(CheckpointError, match="pass --arch"):  # through load_checkpoint
        load_model(str(path))


def test_a_registered_format_gets_its_paths_and_the_arch(monkeypatch):
    monkeypatch.setattr(_registry, "_FILES", list(_registry._FILES))
    seen = []

    @register_checkpoint_format((".toy",))
    def read_toy(path, arch=None):
        seen.append((path, arch))
        return LoadedModel(model=nn.Linear(2, 2), spec=path, arch=arch or "toy", head=None)

    register_checkpoint_format((".toy",))(read_toy)  # registering again replaces, never doubles
    assert sum(fn is read_toy for _, fn in _registry._FILES) == 1
    loaded = load_model("runs/x/model.toy", arch="torchvision:resnet18")
    assert seen == [("runs/x/model.toy", "torchvision:resnet18")]
    assert loaded.arch == "torchvision:resnet18"
    assert load_model("torchvision:resnet18", pretrained=False).head == "fc"  # sources unchanged
