"""oxford-pets: annotations/trainval.txt and test.txt."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures.datasets import make_oxford_pets

from spectral_probe.data import load_dataset
from spectral_probe.errors import DataError


def test_parses_trainval_and_test(tmp_path: Path) -> None:
    base = make_oxford_pets(tmp_path, n_classes=4, per_class=3, test_per_class=2)
    for root in (base, tmp_path):
        train = load_dataset(f"oxford-pets:{root}", "train")
        test = load_dataset(f"oxford-pets:{root}", "test")
        assert train.classes == [
            "Abyssinian",
            "american_bulldog",
            "Bengal",
            "american_pit_bull_terrier",
        ]
        assert train.class_counts().tolist() == [3] * 4 and test.class_counts().tolist() == [2] * 4
        assert Path(train.paths[0]).parent == base / "images"


def test_errors(tmp_path: Path) -> None:
    base = make_oxford_pets(tmp_path)
    (base / "annotations" / "test.txt").unlink()
    with pytest.raises(
        DataError,
        match=r"expected the Oxford-IIIT Pet list file test.txt at .*annotations/test.txt, found nothing",
    ):
        load_dataset(f"oxford-pets:{base}", "test")
    assert len(load_dataset(f"oxford-pets:{base}", "train")) == 12  # train alone still loads
    trainval = base / "annotations" / "trainval.txt"
    trainval.write_text(trainval.read_text() + "Bengal_99 x 1 2\n")
    with pytest.raises(
        DataError, match=r"expected an integer class id in .*trainval.txt, found 'x' for Bengal_99"
    ):
        load_dataset(f"oxford-pets:{base}", "train")
    trainval.write_text("\n".join(trainval.read_text().splitlines()[:-1]) + "\nBirman_1 5 1 4\n")
    with pytest.raises(
        DataError,
        match=r"expected every class to have samples in oxford-pets train .*, found none for 'class_4'",
    ):
        load_dataset(f"oxford-pets:{base}", "train")
