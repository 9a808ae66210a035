"""mit-indoor67: Images/ with TrainImages.txt and TestImages.txt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from _fixtures.datasets import make_mit_indoor67

from spectral_probe.data import load_dataset
from spectral_probe.errors import DataError


def test_parses_lists(tmp_path: Path) -> None:
    root = make_mit_indoor67(tmp_path, n_classes=4, per_class=5, test_per_class=2)
    train = load_dataset(f"mit-indoor67:{root}", "train")
    test = load_dataset(f"mit-indoor67:{root}", "test")
    assert train.classes == ["airport_inside", "artstudio", "auditorium", "bakery"]
    assert train.class_counts().tolist() == [5] * 4 and test.class_counts().tolist() == [2] * 4


def test_errors(tmp_path: Path) -> None:
    root = make_mit_indoor67(tmp_path, n_classes=3)
    (root / "Images" / "bar").mkdir()
    with pytest.raises(
        DataError,
        match=r"expected every class to have samples in mit-indoor67 train .*, found none for 'bar'",
    ):
        load_dataset(f"mit-indoor67:{root}", "train")
    shutil.rmtree(root / "Images" / "artstudio")
    with pytest.raises(
        DataError,
        match=r"expected a category folder of .*Images in .*TestImages.txt \(line \d\), found 'artstudio'",
    ):
        load_dataset(f"mit-indoor67:{root}", "test")
    (root / "TestImages.txt").unlink()
    with pytest.raises(
        DataError, match=r"expected the MIT Indoor 67 list file TestImages.txt at .*, found nothing"
    ):
        load_dataset(f"mit-indoor67:{root}", "test")
