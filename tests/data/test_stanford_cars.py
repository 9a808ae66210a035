"""stanford-cars: the devkit .mat annotations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from _fixtures.datasets import make_stanford_cars

from spectral_probe.data import load_dataset
from spectral_probe.errors import DataError


@pytest.mark.parametrize("in_devkit", [False, True])
def test_parses_devkit(tmp_path: Path, in_devkit: bool) -> None:
    base = make_stanford_cars(
        tmp_path, n_classes=4, per_class=3, test_per_class=2, test_annos_in_devkit=in_devkit
    )
    for root in (base, tmp_path):  # stanford_cars/ or the folder holding it (torchvision's root)
        train = load_dataset(f"stanford-cars:{root}", "train")
        test = load_dataset(f"stanford-cars:{root}", "test")
        assert train.classes[0] == "AM General Hummer SUV 2000" and len(train.classes) == 4
        assert train.class_counts().tolist() == [3] * 4 and test.class_counts().tolist() == [2] * 4
        assert Path(train.paths[0]) == base / "cars_train" / "00001.jpg"
        assert Path(test.paths[0]).parent == base / "cars_test"


def test_matches_torchvision_reading(tmp_path: Path) -> None:
    from torchvision.datasets import StanfordCars

    make_stanford_cars(tmp_path, n_classes=3)
    reference = StanfordCars(str(tmp_path), split="test")
    ours = load_dataset(f"stanford-cars:{tmp_path}", "test")
    assert ours.classes == reference.classes
    assert [(p, t) for p, t in zip(ours.paths, ours.targets, strict=True)] == [
        (str(p), t) for p, t in reference._samples
    ]


def test_missing_test_labels_and_bad_annotations(tmp_path: Path) -> None:
    base = make_stanford_cars(tmp_path)
    (base / "cars_test_annos_withlabels.mat").unlink()
    with pytest.raises(
        DataError,
        match=r"expected the Stanford Cars test labels cars_test_annos_withlabels.mat at one of: .*; found none",
    ):
        load_dataset(f"stanford-cars:{base}", "test")
    annos = np.zeros((1, 1), dtype=[("fname", "O")])
    annos[0, 0] = (np.array(["00001.jpg"]),)
    scipy.io.savemat(str(base / "devkit" / "cars_train_annos.mat"), {"annotations": annos})
    with pytest.raises(
        DataError,
        match=r"expected annotation fields \['class', 'fname'\] in .*cars_train_annos.mat, found \['fname'\]",
    ):
        load_dataset(f"stanford-cars:{base}", "train")


def test_label_outside_class_names(tmp_path: Path) -> None:
    base = make_stanford_cars(tmp_path, n_classes=3)
    names = np.empty((1, 2), dtype=object)
    names[0, 0], names[0, 1] = "A", "B"
    scipy.io.savemat(str(base / "devkit" / "cars_meta.mat"), {"class_names": names})
    with pytest.raises(
        DataError, match=r"expected labels in 1..2 in .*cars_train_annos.mat, found 3"
    ):
        load_dataset(f"stanford-cars:{base}", "train")
