"""fgvc-aircraft: variant lists of the 2013b release."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures.datasets import make_fgvc_aircraft

from spectral_probe.data import load_dataset
from spectral_probe.errors import DataError


def test_trainval_and_test_by_variant(tmp_path: Path) -> None:
    base = make_fgvc_aircraft(tmp_path, n_classes=5, per_class=4, test_per_class=2)
    for root in (tmp_path, base, base / "data"):
        train = load_dataset(f"fgvc-aircraft:{root}", "train")
        test = load_dataset(f"fgvc-aircraft:{root}", "test")
        # variant names with spaces and slashes survive
        assert train.classes == ["707-320", "A300B4", "Cessna 172", "F/A-18", "DHC-8-100"]
        assert train.class_counts().tolist() == [4] * 5  # train = trainval (train + val lists)
        assert test.class_counts().tolist() == [2] * 5
        assert Path(train.paths[0]).parent == base / "data" / "images"


def test_unknown_variant_and_missing_list(tmp_path: Path) -> None:
    base = make_fgvc_aircraft(tmp_path)
    lst = base / "data" / "images_variant_test.txt"
    lst.write_text(lst.read_text() + "0099999 Concorde\n")
    with pytest.raises(
        DataError,
        match=r"expected a variant from variants.txt in .*images_variant_test.txt \(line 7\), found 'Concorde'",
    ):
        load_dataset(f"fgvc-aircraft:{base}", "test")
    (base / "data" / "images_variant_trainval.txt").unlink()
    with pytest.raises(
        DataError,
        match=r"expected the FGVC Aircraft image list file images_variant_trainval.txt at .*, found nothing",
    ):
        load_dataset(f"fgvc-aircraft:{base}", "train")
