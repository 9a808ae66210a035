"""Dataset classes: lazy decoding, labels that match images, subsets, transforms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures.datasets import class_color, make_imagefolder

from spectral_probe.data import (
    ImageFileDataset,
    LabeledSubset,
    TensorImageDataset,
    TextDataset,
    load_dataset,
)
from spectral_probe.errors import DataError

from .conftest import FILE_LAYOUTS


@pytest.mark.parametrize("name", FILE_LAYOUTS)
def test_every_image_carries_its_own_label(name: str, layout_specs: dict[str, str]) -> None:
    for split in ("train", "test"):
        ds = load_dataset(layout_specs[name], split)
        assert isinstance(ds, ImageFileDataset)
        for i in range(len(ds)):
            image, label = ds[i]
            assert image.mode == "RGB"
            pixel = np.asarray(image, dtype=np.int64).reshape(-1, 3).mean(axis=0)
            assert np.abs(pixel - np.array(class_color(label))).max() < 12, (name, split, i)


@pytest.mark.parametrize("name", FILE_LAYOUTS)
def test_loading_decodes_nothing(
    name: str, layout_specs: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import PIL.Image

    opened: list[object] = []
    real_open = PIL.Image.open
    monkeypatch.setattr(PIL.Image, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    ds = load_dataset(layout_specs[name], "train")
    assert opened == [] and len(ds) > 0
    ds[0]
    assert len(opened) == 1


def test_missing_image_is_reported_when_indexed(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, 2, 2)
    ds = load_dataset(f"imagefolder:{tmp_path}", "train")
    Path(ds.paths[1]).unlink()
    with pytest.raises(DataError, match=r"expected an image file at .*img_001.png, found nothing"):
        ds[1]
    Path(ds.paths[2]).write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"expected a readable image at .*img_000.png"):
        ds[2]


def test_subset_keeps_labels_classes_and_kind() -> None:
    images = torch.arange(6, dtype=torch.uint8).view(6, 1, 1, 1).expand(6, 1, 2, 2).contiguous()
    ds = TensorImageDataset(images, [0, 1, 2, 0, 1, 2], ["a", "b", "c"], name="toy", split="train")
    sub = ds.subset([5, 1, 3])
    assert isinstance(sub, LabeledSubset)
    assert sub.targets == [2, 1, 0] and sub.classes == ["a", "b", "c"] and sub.kind == "image"
    x, y = sub[0]
    assert int(x[0, 0, 0]) == 5 and y == 2
    nested = sub.subset([2])
    assert nested.indices.tolist() == [3] and nested[0][1] == 0
    batch, labels = sub[[0, 2]]
    assert batch[:, 0, 0, 0].tolist() == [5, 3] and labels.tolist() == [2, 0]
    with pytest.raises(
        DataError, match=r"expected subset indices in \[0, 6\) for toy/train, found 0..9"
    ):
        ds.subset([0, 9])


def test_with_transform_leaves_the_original_alone() -> None:
    ds = TextDataset([("a", "b"), ("c", "d")], [1, 0], ["x", "y"], name="t", split="train")
    upper = ds.with_transform(lambda pair: tuple(s.upper() for s in pair))
    assert upper[0] == (("A", "B"), 1) and ds[0] == (("a", "b"), 1)
    sub = ds.subset([1]).with_transform(lambda pair: pair[::-1])
    assert sub[0] == (("d", "c"), 0) and ds.subset([1])[0] == (("c", "d"), 0)
    sub.transform = None
    assert sub[0] == (("c", "d"), 0)


def test_tensor_dataset_batches_apply_transform_once() -> None:
    calls: list[tuple[int, ...]] = []

    def record(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return x.float()

    images = torch.zeros(5, 1, 3, 3, dtype=torch.uint8)
    ds = TensorImageDataset(
        images, [0, 1, 0, 1, 0], ["a", "b"], name="toy", split="test", transform=record
    )
    x, y = ds[[0, 3, 4]]
    assert calls == [(3, 1, 3, 3)] and x.dtype == torch.float32 and y.tolist() == [0, 1, 0]
    assert ds.class_counts().tolist() == [3, 2]


def test_constructor_checks() -> None:
    with pytest.raises(
        DataError,
        match=r"expected a uint8 image tensor of shape \(N, C, H, W\), found torch.float32",
    ):
        TensorImageDataset(torch.zeros(2, 1, 2, 2), [0, 1], ["a", "b"], name="x", split="train")
    with pytest.raises(
        DataError, match="expected one label per image in x/train, found 2 images and 3 labels"
    ):
        ImageFileDataset(["a.png", "b.png"], [0, 1, 1], ["a", "b"], name="x", split="train")
