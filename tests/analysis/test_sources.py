"""Which models the weight analyses read as tensors (spectral_probe.analysis._sources): a
state-dict file that names no architecture is read as tensors, never built, on either side."""

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
from spectral_probe.errors import ConfigError
from spectral_probe.extract import (
    layer_table,
    module_table,
    source_layer_table,
    source_module_table,
)
from spectral_probe.sources import StateDictSource, open_source

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


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.save(_tiny(0).state_dict(), a)
    torch.save(_tiny(1).state_dict(), b)
    return a, b


def test_plain_files_give_the_numbers_of_the_real_architecture(pair: tuple[Path, Path]) -> None:
    got = compare_weights(str(pair[0]), str(pair[1]), workers=1, device="cpu")
    want = compare_weights(_tiny(0), _tiny(1), workers=1, device="cpu")
    pd.testing.assert_frame_equal(got.layers, want.layers)
    pd.testing.assert_frame_equal(got.angles, want.angles)
    assert got.meta["inferred_arch"]["models"] == ["model_a", "model_b"]
    assert "inferred_arch" not in want.meta
    esd = esd_layers(str(pair[0]), workers=1)
    pd.testing.assert_frame_equal(esd.layers, esd_layers(_tiny(0), workers=1).layers)
    assert esd.meta["inferred_arch"]["models"] == ["model"]


def test_a_module_against_a_plain_file_reads_tensors_with_the_same_numbers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One side a built model, the other a state-dict file that names no architecture: the file
    is read as tensors, the model through its state_dict, nothing inferred or rebuilt."""
    a, b = _tiny(0), _tiny(1)
    torch.save(b.state_dict(), tmp_path / "b.pt")
    want = compare_weights(a, b, device="cpu", workers=1)

    def no_modules(*args: object, **kwargs: object) -> None:
        raise AssertionError("a plain file was paired as a module")

    monkeypatch.setattr("spectral_probe.analysis.weights.pair_weight_matrices", no_modules)
    for got in (
        compare_weights(a, str(tmp_path / "b.pt"), device="cpu", workers=1),
        compare_weights(StateDictSource(a.state_dict(), "a"), str(tmp_path / "b.pt"), workers=1),
    ):
        pd.testing.assert_frame_equal(got.layers, want.layers)
        pd.testing.assert_frame_equal(got.angles, want.angles)
        assert got.meta["inferred_arch"]["models"] == ["model_b"]


def test_a_plain_file_lists_the_real_layers(pair: tuple[Path, Path]) -> None:
    expected = layer_table(_tiny(0))
    with open_source(str(pair[0])) as source:
        got = source_layer_table(source)
    cols = ["name", "kind", "type", "shape", "matrix", "params"]
    pd.testing.assert_frame_equal(got[cols], expected[cols])
    assert set(expected["kind"]) == {"conv", "linear", "attention"}


def test_grouped_convolution_reads_as_ungrouped_with_the_same_matrix(tmp_path: Path) -> None:
    real = nn.Sequential(nn.Conv2d(8, 8, 3, groups=8), nn.Conv2d(8, 4, 1, groups=2))
    torch.save(real.state_dict(), tmp_path / "g.pt")
    real_t = layer_table(real)
    with open_source(str(tmp_path / "g.pt")) as source:
        file_t = source_layer_table(source)
    assert list(real_t["groups"]) == [8, 2] and list(file_t["groups"]) == [1, 1]
    cols = ["name", "kind", "type", "shape", "matrix", "params"]
    pd.testing.assert_frame_equal(file_t[cols], real_t[cols])


def test_a_plain_file_lists_the_modules_that_hold_tensors(pair: tuple[Path, Path]) -> None:
    real = _tiny(0)
    want = module_table(real)
    holds = {n for n, m in real.named_modules() if n and next(iter(m.state_dict()), None)}
    want = want[want["name"].isin(holds)].reset_index(drop=True)
    with open_source(str(pair[0])) as source:
        got = source_module_table(source)
    assert sorted(got["name"]) == sorted(want["name"])  # stem.2 (a ReLU) holds nothing
    got, want = got.set_index("name"), want.set_index("name")
    layers = ["stem.0", "layer1.10.conv2", "seq", "vol", "attn", "fc"]
    assert list(got.loc[layers, "type"]) == list(want.loc[layers, "type"])
    assert got.loc["stem.1", "type"] == "" and got.loc["tok_embed", "type"] == "Embedding"
    no_buffers = ["fc", "attn", "seq", "layer1.0.conv2", "norm"]
    assert list(got.loc[no_buffers, "params"]) == list(want.loc[no_buffers, "params"])
    assert got.loc["stem.1", "params"] == 4 * 8 + 1  # weight, bias, running stats, count
    assert bool(got.loc["layer1.0", "leaf"]) is False and bool(got.loc["layer1.0.bn1", "leaf"])
    with open_source(str(pair[0])) as source:
        only = source_module_table(source, include=r"^layer1\.1\.", exclude="bn")
    assert list(only["name"]) == ["layer1.1.conv1", "layer1.1.conv2"]


def test_plain_files_import_no_architecture_package(pair: tuple[Path, Path]) -> None:
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


def test_split_groups_on_a_weight_file_is_one_error(pair: tuple[Path, Path]) -> None:
    """A file does not record a convolution's groups: refused, never silently ignored."""
    with pytest.raises(ConfigError, match=r"--split-groups only .*a\.pt.* read as tensors"):
        compare_weights(_tiny(0), str(pair[0]), split_groups=True, workers=1, device="cpu")
    with pytest.raises(ConfigError, match=r"--split-groups only .*b\.pt read as tensors"):
        esd_layers(str(pair[1]), split_groups=True, workers=1)
    assert compare_weights(_tiny(0), _tiny(1), split_groups=True, workers=1).layers.shape[0] > 0
