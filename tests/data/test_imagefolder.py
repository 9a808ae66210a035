"""imagefolder: two-split and single-folder layouts, and their errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _fixtures.datasets import make_imagefolder, write_image

from spectral_probe.data import load_dataset
from spectral_probe.errors import DataError


def test_two_splits_share_class_index(tmp_path: Path) -> None:
    make_imagefolder(
        tmp_path, 3, 4, test_per_class=2, ext=".jpg", class_names=["cat", "dog", "emu"]
    )
    shutil.rmtree(tmp_path / "test" / "dog")  # a test split may lack a class
    train = load_dataset(f"imagefolder:{tmp_path}", "train")
    test = load_dataset(f"imagefolder:{tmp_path}", "test")
    assert train.classes == test.classes == ["cat", "dog", "emu"]
    assert train.targets == [0] * 4 + [1] * 4 + [2] * 4
    assert test.targets == [0, 0, 2, 2]


def test_val_folder_serves_as_test(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, 2, 3, test_per_class=1)
    (tmp_path / "test").rename(tmp_path / "val")
    assert len(load_dataset(f"imagefolder:{tmp_path}", "test")) == 2


def test_nested_files_hidden_entries_and_other_extensions(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, 2, 2, split_folders=False)
    write_image(tmp_path / "class_00" / "deeper" / "x.PNG", (0, 0, 0))
    (tmp_path / "class_00" / "notes.txt").write_text("not an image")
    write_image(tmp_path / "class_01" / ".hidden.png", (0, 0, 0))
    write_image(tmp_path / ".cache" / "y.png", (0, 0, 0))
    ds = load_dataset(f"imagefolder:{tmp_path}", "train")
    assert ds.classes == ["class_00", "class_01"]
    assert ds.targets == [0, 0, 0, 1, 1]


def test_single_folder_is_one_split(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, 2, 3, split_folders=False)
    assert len(load_dataset(f"imagefolder:{tmp_path}", "train")) == 6
    with pytest.raises(
        DataError, match=r"expected .*/test/ for split 'test', found a single-folder layout"
    ):
        load_dataset(f"imagefolder:{tmp_path}", "test")


def test_errors(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, 2, 2, test_per_class=1)
    shutil.rmtree(tmp_path / "test")
    with pytest.raises(
        DataError,
        match=r"expected the test split's test/ \(or val/\) directory at .*test, found nothing",
    ):
        load_dataset(f"imagefolder:{tmp_path}", "test")
    (tmp_path / "train" / "empty_class").mkdir()
    with pytest.raises(
        DataError,
        match=r"expected images in class folder .*empty_class, found none \(an empty class\)",
    ):
        load_dataset(f"imagefolder:{tmp_path}", "train")
    (tmp_path / "train" / "empty_class").rmdir()
    write_image(tmp_path / "test" / "stranger" / "a.png", (1, 2, 3))
    with pytest.raises(
        DataError,
        match=r"expected class folders among the 2 training classes in .*test, found unknown class 'stranger'",
    ):
        load_dataset(f"imagefolder:{tmp_path}", "test")
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(DataError, match=r"expected class subfolders in .*bare, found none"):
        load_dataset(f"imagefolder:{bare}", "train")


def test_auto_split_reads_every_image_of_a_single_folder(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, 2, 3, split_folders=False)
    ds = load_dataset(f"imagefolder:{tmp_path}", "auto")
    assert (ds.split, len(ds), ds.targets) == ("all", 6, [0, 0, 0, 1, 1, 1])
    assert load_dataset(f"imagefolder:{tmp_path}", "all").targets == ds.targets
    with pytest.raises(
        DataError,
        match=r"analyses read every image with --split all .* fine-tuning holds out 20% of each class itself",
    ):
        load_dataset(f"imagefolder:{tmp_path}", "test")


def test_auto_split_reads_the_test_split_of_two_folders(tmp_path: Path) -> None:
    make_imagefolder(tmp_path, 2, 3, test_per_class=1)
    ds = load_dataset(f"imagefolder:{tmp_path}", "auto")
    assert (ds.split, len(ds)) == ("test", 2)
    with pytest.raises(DataError, match=r"found 'all'; use --split test or --split train"):
        load_dataset(f"imagefolder:{tmp_path}", "all")
