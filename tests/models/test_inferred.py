"""An architecture inferred from a state dict alone (spectral_probe.models.inferred)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from spectral_probe.analysis import compare_weights
from spectral_probe.analysis.esd import esd_layers
from spectral_probe.errors import CheckpointError
from spectral_probe.extract import layer_table
from spectral_probe.models import load_model
from spectral_probe.models.inferred import INFERRED_ARCH, InferredModule, infer_module

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 1)


class Tiny(nn.Module):
    """Conv1d/2d/3d, norms with buffers, nested blocks, an embedding, attention and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(*(Block() for _ in range(11)))
        self.seq = nn.Conv1d(4, 6, 5)
        self.vol = nn.Conv3d(2, 3, (1, 2, 3), bias=False)
        self.tok_embed = nn.Embedding(10, 8)
        self.attn = nn.MultiheadAttention(8, 2)
        self.norm = nn.LayerNorm(8)
        self.fc = nn.Linear(8, 5)


def _tiny(seed: int) -> Tiny:
    torch.manual_seed(seed)
    return Tiny().eval()


def test_layers_have_the_real_names_kinds_and_shapes() -> None:
    real = _tiny(0)
    inferred = infer_module(real.state_dict())
    expected = layer_table(real)
    pd.testing.assert_frame_equal(layer_table(inferred), expected)
    assert set(expected["kind"]) == {"conv", "linear", "attention"}
    assert "tok_embed" not in set(expected["name"])  # an embedding table is no layer
    assert isinstance(inferred.get_submodule("layer1.10.conv2"), nn.Conv2d)
    assert isinstance(inferred.get_submodule("layer1.10.bn1"), InferredModule)


def test_tensors_are_assigned_and_every_one_kept() -> None:
    state = _tiny(0).state_dict()
    inferred = infer_module(state).state_dict()
    assert list(inferred) == list(state)
    for k, v in state.items():
        assert inferred[k].dtype == v.dtype and torch.equal(inferred[k], v)
    assert inferred["fc.weight"].data_ptr() == state["fc.weight"].data_ptr()  # no copy


def test_grouped_convolution_reads_as_ungrouped_with_the_same_matrix() -> None:
    real = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 4, 1, groups=2))
    real_t, inferred_t = layer_table(real), layer_table(infer_module(real.state_dict()))
    assert list(real_t["groups"]) == [8, 2] and list(inferred_t["groups"]) == [1, 1]
    cols = ["name", "kind", "type", "shape", "matrix", "params"]
    pd.testing.assert_frame_equal(inferred_t[cols], real_t[cols])


def test_sorted_names_keep_numbers_in_order() -> None:
    state = _tiny(0).state_dict()
    shuffled = dict(sorted(state.items(), reverse=True))
    names = list(layer_table(infer_module(shuffled, sort_names=True))["name"])
    blocks = [n for n in names if n.startswith("layer1.")]
    assert blocks[:2] == ["layer1.0.conv1", "layer1.0.conv2"] and blocks[-1] == "layer1.10.conv2"


def test_names_that_form_no_module_tree_are_one_error() -> None:
    state = {"fc.weight": torch.zeros(2, 3), "fc.weight.extra": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"'fc\.weight\.extra'.*--arch"):
        infer_module(state, source="x.pt")


def test_inferred_model_has_no_forward_pass() -> None:
    with pytest.raises(CheckpointError, match="--arch"):
        infer_module(_tiny(0).state_dict())(torch.zeros(1, 3, 8, 8))


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(_tiny(0).state_dict(), a)
    torch.save(_tiny(1).state_dict(), b)
    return a, b


def test_load_model_infers_only_when_asked(pair: tuple[Path, Path]) -> None:
    with pytest.raises(CheckpointError, match="pass --arch"):
        load_model(str(pair[0]))
    loaded = load_model(str(pair[0]), infer_arch=True)
    assert loaded.arch == INFERRED_ARCH and "tensor shapes" in loaded.metadata["inferred_arch"]
    assert loaded.head == "fc" and loaded.num_classes == 5


def test_compare_weights_equals_the_real_architecture(pair: tuple[Path, Path]) -> None:
    got = compare_weights(str(pair[0]), str(pair[1]), workers=1, device="cpu")
    want = compare_weights(_tiny(0), _tiny(1), workers=1, device="cpu")
    pd.testing.assert_frame_equal(got.layers, want.layers)
    pd.testing.assert_frame_equal(got.angles, want.angles)
    assert got.meta["inferred_arch"]["models"] == ["model_a", "model_b"]
    assert "inferred_arch" not in want.meta
    esd = esd_layers(str(pair[0]), workers=1)
    pd.testing.assert_frame_equal(esd.layers, esd_layers(_tiny(0), workers=1).layers)
    assert esd.meta["inferred_arch"]["models"] == ["model"]


def test_inferred_path_imports_no_torchvision(pair: tuple[Path, Path]) -> None:
    code = (
        "import json, sys\n"
        "from spectral_probe.analysis import compare_weights\n"
        f"compare_weights({str(pair[0])!r}, {str(pair[1])!r}, workers=1, device='cpu')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('torchvision', 'timm'))))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []
