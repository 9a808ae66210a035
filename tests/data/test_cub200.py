"""cub200: the official CUB_200_2011 list files."""

from __future__ import annotations

from pathlib import Path

import pytest
from _fixtures.datasets import make_cub200

from spectral_probe.data import load_dataset
from spectral_probe.errors import DataError


def test_parses_official_lists_from_either_root(tmp_path: Path) -> None:
    base = make_cub200(tmp_path, n_classes=4, per_class=5, test_per_class=3)
    assert base.name == "CUB_200_2011"
    for root in (base, tmp_path):  # the dataset folder or the folder it was extracted into
        train = load_dataset(f"cub200:{root}", "train")
        test = load_dataset(f"cub200:{root}", "test")
        assert len(train) == 20 and len(test) == 12
        assert train.classes == [
            "Black_footed_Albatross",
            "Laysan_Albatross",
            "Sooty_Albatross",
            "Groove_billed_Ani",
        ]
        assert train.class_counts().tolist() == [5] * 4 and test.class_counts().tolist() == [3] * 4
        assert not set(train.paths) & set(test.paths)
        assert all(p.startswith(str(base / "images")) for p in train.paths)


def test_missing_list_file_is_named(tmp_path: Path) -> None:
    base = make_cub200(tmp_path)
    (base / "train_test_split.txt").unlink()
    with pytest.raises(
        DataError,
        match=r"expected the CUB-200-2011 split list file train_test_split.txt at .*, found nothing",
    ):
        load_dataset(f"cub200:{base}", "train")


def test_wrong_root_names_the_marker_file(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"expected the cub200 file images.txt at one of: .*images.txt, .*CUB_200_2011/images.txt; found none",
    ):
        load_dataset(f"cub200:{tmp_path}", "train")


def test_label_outside_class_list(tmp_path: Path) -> None:
    base = make_cub200(tmp_path, n_classes=3)
    lines = (base / "image_class_labels.txt").read_text().splitlines()
    lines[2] = lines[2].split()[0] + " 7"
    (base / "image_class_labels.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"expected labels in 1..3 in .*image_class_labels.txt, found 7"
    ):
        load_dataset(f"cub200:{base}", "train")


def test_empty_class_and_missing_entries(tmp_path: Path) -> None:
    base = make_cub200(tmp_path, n_classes=3)
    (base / "classes.txt").write_text(
        (base / "classes.txt").read_text() + "4 004.Groove_billed_Ani\n"
    )
    with pytest.raises(
        DataError,
        match=r"expected every class to have samples in cub200 train .*, found none for 'Groove_billed_Ani'",
    ):
        load_dataset(f"cub200:{base}", "train")
    (base / "train_test_split.txt").write_text(
        "\n".join((base / "train_test_split.txt").read_text().splitlines()[:-1]) + "\n"
    )
    with pytest.raises(
        DataError,
        match=r"expected image id 18 \(from images.txt\) in .*train_test_split.txt, found no entry",
    ):
        load_dataset(f"cub200:{base}", "test")


def test_moved_images_folder_is_caught_at_load(tmp_path: Path) -> None:
    base = make_cub200(tmp_path)
    (base / "images").rename(base / "imgs")
    with pytest.raises(
        DataError,
        match=r"expected the cub200 image .*images/001.Black_footed_Albatross/.* \(first entry of images.txt\), found nothing",
    ):
        load_dataset(f"cub200:{base}", "train")
