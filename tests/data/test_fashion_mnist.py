"""Fashion-MNIST: file discovery, parsing against generated files, the real files if present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures.datasets import fake_fashion_mnist_arrays, make_fashion_mnist, write_idx

from spectral_probe.data import TensorImageDataset, load_dataset
from spectral_probe.data import fashion_mnist as fm
from spectral_probe.errors import DataError


@pytest.mark.parametrize(
    ("layout", "gz"), [("flat", True), ("flat", False), ("torchvision", False)]
)
def test_reads_generated_files(tmp_path: Path, layout: str, gz: bool) -> None:
    make_fashion_mnist(tmp_path, n_train=25, n_test=12, layout=layout, gz=gz, seed=3)
    ds = load_dataset(f"fashion-mnist:{tmp_path}", "train")
    images, labels = fake_fashion_mnist_arrays(25, seed=3)
    assert isinstance(ds, TensorImageDataset)
    assert ds.images.shape == (25, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert np.array_equal(ds.images[:, 0].numpy(), images)
    assert ds.targets == labels.tolist()
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    x, y = ds[4]
    assert torch.equal(x, torch.from_numpy(images[4]).unsqueeze(0)) and y == int(labels[4])
    test = load_dataset(f"fashion-mnist:{tmp_path}", "test")
    assert len(test) == 12 and test.targets == fake_fashion_mnist_arrays(12, seed=4)[1].tolist()


def test_default_source_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    debian, cache = tmp_path / "debian", tmp_path / "cache"
    monkeypatch.setattr(fm, "DEBIAN_DIR", debian)
    monkeypatch.setenv("SPECTRAL_PROBE_CACHE", str(cache))
    make_fashion_mnist(cache, n_train=11, layout="torchvision", gz=False)
    assert len(load_dataset("fashion-mnist", "train")) == 11  # no Debian files: the cache
    make_fashion_mnist(debian, n_train=13)
    assert len(load_dataset("fashion-mnist", "train")) == 13  # Debian files win


def test_missing_files_name_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"expected Fashion-MNIST files t10k-images-idx3-ubyte\[.gz\] and t10k-labels-idx1-ubyte\[.gz\] in one of: .*; found none",
    ):
        load_dataset(f"fashion-mnist:{tmp_path}", "test")


def test_mismatched_and_out_of_range_labels(tmp_path: Path) -> None:
    images, labels = fake_fashion_mnist_arrays(10)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels[:7])
    with pytest.raises(
        DataError, match=r"expected 10 labels in .* \(one per image\), found shape \(7,\)"
    ):
        load_dataset(f"fashion-mnist:{tmp_path}", "train")
    bad = labels.copy()
    bad[3] = 12
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", bad)
    with pytest.raises(
        DataError, match=r"expected labels in 0..9 in .*train-labels.*, found 12 \(entry 4\)"
    ):
        load_dataset(f"fashion-mnist:{tmp_path}", "train")


@pytest.mark.skipif(
    not (fm.DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="Debian package dataset-fashion-mnist not installed",
)
def test_real_debian_files() -> None:
    train = load_dataset("fashion-mnist", "train")
    test = load_dataset("fashion-mnist", "test")
    assert len(train) == 60000 and len(test) == 10000
    assert train.class_counts().tolist() == [6000] * 10
    assert test.class_counts().tolist() == [1000] * 10
    assert train.targets[:10] == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.targets[:10] == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert 70 < float(train.images.float().mean()) < 76
