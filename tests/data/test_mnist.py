"""MNIST (``mnist[:ROOT]``): the lookup in each layout, gz and plain, bad files, the cache."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures.datasets import fake_fashion_mnist_arrays, make_mnist, write_idx

from spectral_probe.data import (
    TensorImageDataset,
    get_dataset_info,
    list_datasets,
    load_dataset,
    mnist,
)
from spectral_probe.data import fashion_mnist as fm
from spectral_probe.errors import DataError


@pytest.mark.parametrize("layout", ["flat", "raw", "torchvision"])
@pytest.mark.parametrize("gz", [True, False])
def test_reads_each_layout(tmp_path: Path, layout: str, gz: bool) -> None:
    make_mnist(tmp_path, n_train=25, n_test=12, layout=layout, gz=gz, seed=3)
    ds = load_dataset(f"mnist:{tmp_path}", "train")
    images, labels = fake_fashion_mnist_arrays(25, seed=3)
    assert isinstance(ds, TensorImageDataset) and ds.name == "mnist" and ds.split == "train"
    assert ds.images.shape == (25, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert np.array_equal(ds.images[:, 0].numpy(), images) and ds.targets == labels.tolist()
    assert ds.classes == [str(d) for d in range(10)]
    images_path, _ = mnist.find_mnist(tmp_path, "train")
    assert images_path.name == "train-images-idx3-ubyte" + (".gz" if gz else "")
    test = load_dataset(f"mnist:{tmp_path}", "test")
    assert len(test) == 12 and test.targets == fake_fashion_mnist_arrays(12, seed=4)[1].tolist()


def test_registered_and_listed() -> None:
    info = get_dataset_info("mnist")
    assert "mnist" in list_datasets() and info.kind == "image" and info.root == "optional"
    assert info.usage == "mnist[:/path/with/idx/files]"


def test_missing_files_name_every_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_dataset(f"mnist:{tmp_path}", "test")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(
        "expected MNIST files t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz] in one of: "
    )
    assert f"{tmp_path}, {tmp_path / 'raw'}, {tmp_path / 'MNIST' / 'raw'}; found none" in msg


def test_without_a_root_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPECTRAL_PROBE_CACHE", str(tmp_path))
    make_mnist(tmp_path, n_train=11, layout="torchvision", gz=False)
    assert len(load_dataset("mnist", "train")) == 11


def test_a_failed_download_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No files in the cache: torchvision's download is the last resort; its failure says where we looked."""

    class Offline:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            raise OSError("<urlopen error [Errno -3] Temporary failure in name resolution>\nmore")

    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    monkeypatch.setenv("SPECTRAL_PROBE_CACHE", str(tmp_path))
    with pytest.raises(DataError) as err:
        load_dataset("mnist", "train")
    msg = str(err.value)
    assert "\n" not in msg and f"in one of: {tmp_path / 'MNIST' / 'raw'}; found none" in msg
    assert (
        "the download into" in msg and "OSError: <urlopen error" in msg and "give mnist:ROOT" in msg
    )


def test_truncated_and_bad_files(tmp_path: Path) -> None:
    make_mnist(tmp_path, n_train=10, gz=False)
    images = tmp_path / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:-5])
    with pytest.raises(
        DataError, match=r"expected 7840 data bytes for shape \(10, 28, 28\) in .*, found 7835"
    ):
        load_dataset(f"mnist:{tmp_path}", "train")
    images.write_bytes(b"\x1f\x8b" + gzip.compress(b"x" * 100)[2:-4])  # gzip, cut short
    with pytest.raises(
        DataError, match=r"expected a complete gzip file at .*train-images-idx3-ubyte"
    ):
        load_dataset(f"mnist:{tmp_path}", "train")
    images.write_bytes(b"P5\n28 28\n255\n" + bytes(784))  # not IDX
    with pytest.raises(
        DataError, match=r"expected an IDX header 0000<type><ndim> in .*, found 0x50350a32"
    ):
        load_dataset(f"mnist:{tmp_path}", "train")
    write_idx(images, np.zeros((10, 784), np.uint8))  # flat vectors, not images
    with pytest.raises(
        DataError,
        match=r"expected uint8 images of shape \(N, H, W\) in .*, found uint8 of shape \(10, 784\)",
    ):
        load_dataset(f"mnist:{tmp_path}", "train")


def test_mismatched_and_out_of_range_labels(tmp_path: Path) -> None:
    images, labels = fake_fashion_mnist_arrays(10)
    write_idx(tmp_path / "raw" / "train-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "raw" / "train-labels-idx1-ubyte.gz", labels[:7])
    with pytest.raises(
        DataError, match=r"expected 10 labels in .* \(one per image\), found shape \(7,\)"
    ):
        load_dataset(f"mnist:{tmp_path}", "train")
    bad = labels.copy()
    bad[3] = 10
    write_idx(tmp_path / "raw" / "train-labels-idx1-ubyte.gz", bad)
    with pytest.raises(
        DataError, match=r"expected labels in 0..9 in .*train-labels.*, found 10 \(entry 4\)"
    ):
        load_dataset(f"mnist:{tmp_path}", "train")


def test_fashion_mnist_names_still_work(tmp_path: Path) -> None:
    """The shared folder logic keeps Fashion-MNIST's public names and layout (FashionMNIST/raw)."""
    make_mnist(tmp_path, n_train=10, layout="torchvision")
    with pytest.raises(DataError, match="expected Fashion-MNIST files"):
        fm.find_fashion_mnist(tmp_path, "train")  # MNIST/raw is not Fashion-MNIST's folder
    (tmp_path / "MNIST").rename(tmp_path / "FashionMNIST")
    images, labels = fm.load_arrays(tmp_path, "train")
    assert images.shape == (10, 28, 28) and labels.dtype == np.int64
    assert (
        len(fm.FASHION_MNIST_CLASSES) == 10
        and fm.cache_dir()
        and fm.DEBIAN_DIR.name == "fashion-mnist"
    )
