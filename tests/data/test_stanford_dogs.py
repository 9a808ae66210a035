"""stanford-dogs: Images/ with the .mat lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from _fixtures.datasets import make_stanford_dogs

from spectral_probe.data import load_dataset
from spectral_probe.errors import DataError


@pytest.mark.parametrize("lists_subdir", [False, True])
def test_parses_mat_lists(tmp_path: Path, lists_subdir: bool) -> None:
    root = make_stanford_dogs(
        tmp_path, n_classes=5, per_class=3, test_per_class=2, lists_subdir=lists_subdir
    )
    train = load_dataset(f"stanford-dogs:{root}", "train")
    test = load_dataset(f"stanford-dogs:{root}", "test")
    # "n02086240-Shih-Tzu" keeps the hyphen inside the breed name
    assert train.classes == ["Chihuahua", "Japanese_spaniel", "Maltese_dog", "Shih-Tzu", "Pekinese"]
    assert train.class_counts().tolist() == [3] * 5 and test.class_counts().tolist() == [2] * 5
    assert all(Path(p).parent.parent == root / "Images" for p in train.paths)


def test_missing_list_names_the_file(tmp_path: Path) -> None:
    root = make_stanford_dogs(tmp_path)
    (root / "test_list.mat").unlink()
    with pytest.raises(
        DataError,
        match=r"expected the Stanford Dogs list test_list.mat at one of: .*test_list.mat, .*lists/test_list.mat; found none",
    ):
        load_dataset(f"stanford-dogs:{root}", "test")
    with pytest.raises(
        DataError, match=r"expected the Stanford Dogs Images/ directory at .*Images, found nothing"
    ):
        load_dataset(f"stanford-dogs:{tmp_path / 'Images'}", "train")


def _rewrite(path: Path, **changes: object) -> None:
    mat = scipy.io.loadmat(str(path))
    mat.update(changes)
    scipy.io.savemat(str(path), {k: v for k, v in mat.items() if not k.startswith("__")})


def test_label_errors(tmp_path: Path) -> None:
    root = make_stanford_dogs(tmp_path, n_classes=3)
    labels = scipy.io.loadmat(str(root / "train_list.mat"))["labels"].copy()
    labels[0, 0] = 4
    _rewrite(root / "train_list.mat", labels=labels)
    with pytest.raises(
        DataError, match=r"expected labels in 1..3 in .*train_list.mat, found 4 \(entry 1\)"
    ):
        load_dataset(f"stanford-dogs:{root}", "train")
    labels[0, 0] = 2  # in range, but the file sits in class 1's folder
    _rewrite(root / "train_list.mat", labels=labels)
    with pytest.raises(
        DataError,
        match=r"expected label 2 to be class folder 'n02085657-Japanese_spaniel' .* \(entry 1\), found 'n02085620-Chihuahua'",
    ):
        load_dataset(f"stanford-dogs:{root}", "train")


def test_empty_class_and_missing_variables(tmp_path: Path) -> None:
    root = make_stanford_dogs(tmp_path, n_classes=3)
    (root / "Images" / "n02085731-Extra_breed").mkdir()
    with pytest.raises(
        DataError,
        match=r"expected every class to have samples in stanford-dogs train .*, found none for 'Extra_breed'",
    ):
        load_dataset(f"stanford-dogs:{root}", "train")
    scipy.io.savemat(str(root / "test_list.mat"), {"file_list": np.array([["x"]], dtype=object)})
    with pytest.raises(
        DataError,
        match=r"expected variables \['file_list', 'labels'\] in .*test_list.mat, found \['file_list'\]",
    ):
        load_dataset(f"stanford-dogs:{root}", "test")
