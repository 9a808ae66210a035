"""extract.weights: which matrices a model has, and pairing two models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spectral_probe.errors import ConfigError, NoSharedLayersError
from spectral_probe.extract import iter_weight_matrices, layer_table, pair_weight_matrices


class Tiny(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.dw = nn.Conv2d(8, 8, 3, groups=8)
        self.grouped = nn.Conv2d(8, 4, 1, groups=2)
        self.attn = nn.MultiheadAttention(8, 2)
        self.fc = nn.Linear(8, classes)


def test_kinds_names_and_shapes():
    mats = {wm.name: wm for wm in iter_weight_matrices(Tiny())}
    assert list(mats) == [
        "conv",
        "dw",
        "grouped",
        "attn.in_proj:q",
        "attn.in_proj:k",
        "attn.in_proj:v",
        "attn.out_proj",
        "fc",
    ]
    assert mats["conv"].matrix.shape == (8, 27) and mats["conv"].kind == "conv"
    assert mats["dw"].matrix.shape == (8, 9) and mats["dw"].groups == 8
    assert (
        mats["attn.in_proj:k"].matrix.shape == (8, 8) and mats["attn.in_proj:k"].kind == "attention"
    )
    assert mats["fc"].kind == "linear"


def test_fused_split_matches_parameter():
    model = Tiny()
    mats = {wm.name: wm.matrix for wm in iter_weight_matrices(model, kinds=["attention"])}
    assert torch.equal(mats["attn.in_proj:v"], model.attn.in_proj_weight.detach()[16:])


def test_split_groups_and_filters():
    names = [wm.name for wm in iter_weight_matrices(Tiny(), split_groups=True, kinds=["conv"])]
    assert (
        names[:3] == ["conv", "dw:g0", "dw:g1"]
        and "grouped:g1" in names
        and len(names) == 1 + 8 + 2
    )
    assert [wm.name for wm in iter_weight_matrices(Tiny(), include="^d")] == ["dw"]
    assert "fc" not in [wm.name for wm in iter_weight_matrices(Tiny(), exclude="fc|attn")]


def test_separate_bert_style_projections_are_attention():
    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.query, self.key, self.value = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4)

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.self = SelfAttention()
            self.intermediate = nn.Linear(4, 16)

    kinds = {wm.name: wm.kind for wm in iter_weight_matrices(Layer())}
    assert kinds == {
        "self.query": "attention",
        "self.key": "attention",
        "self.value": "attention",
        "intermediate": "linear",
    }


def test_timm_qkv_is_split():
    timm = pytest.importorskip("timm")
    model = timm.create_model("vit_tiny_patch16_224", depth=1)
    names = [wm.name for wm in iter_weight_matrices(model, kinds=["attention"])]
    assert names == [
        "blocks.0.attn.qkv:q",
        "blocks.0.attn.qkv:k",
        "blocks.0.attn.qkv:v",
        "blocks.0.attn.proj",
    ]


def test_bad_filters():
    with pytest.raises(ConfigError, match="regular expression for --include"):
        list(iter_weight_matrices(Tiny(), include="("))
    with pytest.raises(ConfigError, match="layer kinds"):
        list(iter_weight_matrices(Tiny(), kinds=["bogus"]))


def test_pairing_skips_new_head_and_extra_layers():
    a, b = Tiny(3), Tiny(5)
    b.extra = nn.Linear(2, 2)
    pairs = pair_weight_matrices(a, b)
    assert [p[0].name for p in pairs.pairs] == [
        "conv",
        "dw",
        "grouped",
        "attn.in_proj:q",
        "attn.in_proj:k",
        "attn.in_proj:v",
        "attn.out_proj",
    ]
    reasons = {s.name: s.reason for s in pairs.skipped}
    assert reasons["fc"].startswith("shapes differ") and reasons["extra"] == "only in model B"


def test_no_shared_layers_is_an_error():
    with pytest.raises(
        NoSharedLayersError, match="share layers of the same name and shape, found none"
    ):
        pair_weight_matrices(nn.Sequential(nn.Linear(2, 3)), nn.Sequential(nn.Conv2d(1, 1, 1)))


def test_layer_table():
    table = layer_table(Tiny())
    assert list(table.columns) == ["name", "kind", "type", "shape", "matrix", "groups", "params"]
    row = table.set_index("name").loc["conv"]
    assert row["shape"] == "8x3x3x3" and row["matrix"] == "8x27" and row["params"] == 216
