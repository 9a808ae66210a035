"""extract.feature_loader: the same batches for every model, filters, files, text, mismatches."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from spectral_probe.data import TensorImageTransform, load_dataset
from spectral_probe.errors import ConfigError, DataError
from spectral_probe.extract import (
    extract_features,
    iter_features,
    make_feature_loader,
)
from spectral_probe.models import load_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_loaders_give_every_model_the_same_batches(resnet):
    lite = load_model("bundled:efficientnet_lite0", pretrained=False)
    data = load_dataset("digits", "test")
    a = make_feature_loader(resnet, data, 16, device="cpu", image_size=24, seed=3, max_batches=4)
    b = make_feature_loader(lite, data, 16, device="cpu", seed=3, max_batches=4)
    assert len(a) == len(b) == 4
    la, lb = [y for _, y in a], [y for _, y in b]
    assert all(torch.equal(x, y) for x, y in zip(la, lb))
    assert len(set(la[0].tolist())) > 3  # shuffled: batches mix the classes
    xa, xb = next(iter(a))[0], next(iter(b))[0]
    assert xa.shape == (16, 3, 24, 24) and xb.shape == (16, 3, 224, 224)  # each model's own size
    assert isinstance(a.transform, TensorImageTransform)
    # each model's own resizing filter: bilinear for torchvision, bicubic for EfficientNet-Lite
    assert (a.interpolation, a.transform.interpolation) == ("bilinear", "bilinear")
    assert (b.interpolation, b.transform.interpolation) == ("bicubic", "bicubic")
    # ImageNet statistics for torchvision, mean = std = 0.5 for EfficientNet-Lite
    assert xb.min() >= -1.0 - 1e-6 and xb.max() <= 1.0 + 1e-6 and xa.min() < -1.5


def test_interpolation_override_and_unknown_filters(resnet):
    lite = load_model("bundled:efficientnet_lite0", pretrained=False)
    data = load_dataset("digits", "test")
    own = make_feature_loader(lite, data, 8, device="cpu", image_size=40, max_batches=1)
    bil = make_feature_loader(
        lite, data, 8, device="cpu", image_size=40, max_batches=1, interpolation="bilinear"
    )
    assert bil.interpolation == bil.transform.interpolation == "bilinear"
    (xo, yo), (xb, yb) = next(iter(own)), next(iter(bil))
    assert torch.equal(yo, yb) and not torch.allclose(xo, xb)  # same images, resized differently
    odd = dataclasses.replace(
        resnet, preprocessing=dataclasses.replace(resnet.preprocessing, interpolation="lanczos")
    )
    with pytest.raises(
        DataError, match="found 'lanczos' in the preprocessing of torchvision:resnet18"
    ):
        make_feature_loader(odd, data, 8, device="cpu")
    assert (
        make_feature_loader(odd, data, 8, device="cpu", interpolation="nearest").interpolation
        == "nearest"
    )
    with pytest.raises(
        DataError, match="expected an interpolation in bilinear, bicubic, nearest, found 'cubic'"
    ):
        make_feature_loader(resnet, data, 8, device="cpu", interpolation="cubic")


def test_iter_and_extract_features(resnet):
    data = load_dataset("digits", "test")
    kwargs = dict(batch_size=8, image_size=32, max_batches=3, device="cpu")
    parts = [f["penultimate"] for f in iter_features(resnet, data, **kwargs)]
    assert [p.shape for p in parts] == [(8, 512)] * 3
    whole = extract_features(resnet, data, **kwargs)["penultimate"]
    torch.testing.assert_close(whole, torch.cat(parts))


def test_image_files_go_through_the_paper_transform(tmp_path, resnet):
    from _fixtures.datasets import make_imagefolder

    make_imagefolder(tmp_path, 3, 4, test_per_class=2, size=12)
    data = load_dataset(f"imagefolder:{tmp_path}", "train")
    loader = make_feature_loader(resnet, data, 4, device="cpu", image_size=16)
    assert len(loader) == 3  # 12 images, batches of 4
    x, y = next(iter(loader))
    assert x.shape == (4, 3, 16, 16) and y.shape == (4,)


def test_modality_and_tokenizer_mismatches(resnet, minilm, tmp_path):
    from _fixtures.datasets import make_glue_task

    glue = load_dataset(f"glue-sst2:{make_glue_task(tmp_path, 'sst2', n=8)}", "train")
    with pytest.raises(ConfigError, match="expected image data for torchvision:resnet18"):
        make_feature_loader(resnet, glue, 4, device="cpu")
    with pytest.raises(ConfigError, match="expected text data"):
        make_feature_loader(minilm, load_dataset("digits", "test"), 4, device="cpu")
    batches = list(make_feature_loader(minilm, glue, 4, device="cpu", max_length=6))
    assert len(batches) == 2 and batches[0][0]["input_ids"].shape[1] <= 6
