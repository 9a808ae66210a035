"""Spec parsing, the registry, and the contract every registered dataset meets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spectral_probe.data import (
    DataSpec,
    LabeledDataset,
    get_dataset_info,
    list_datasets,
    load_dataset,
    parse_data_spec,
    register_dataset,
)
from spectral_probe.data import spec as spec_module
from spectral_probe.errors import DataError

from .conftest import MAKERS

EXPECTED = {
    "cub200",
    "digits",
    "fashion-mnist",
    "fgvc-aircraft",
    "glue-mnli",
    "glue-mrpc",
    "glue-qnli",
    "glue-sst2",
    "imagefolder",
    "mit-indoor67",
    "mnist",
    "oxford-pets",
    "stanford-cars",
    "stanford-dogs",
}


def test_registry_lists_every_builtin_dataset() -> None:
    assert set(list_datasets()) == EXPECTED
    assert list_datasets() == sorted(list_datasets())
    assert list_datasets("glue-*") == ["glue-mnli", "glue-mrpc", "glue-qnli", "glue-sst2"]
    assert set(list_datasets(kind="text")) == {n for n in EXPECTED if n.startswith("glue-")}


def test_every_registered_dataset_has_a_fixture() -> None:
    # The common contract test below runs over MAKERS; a new dataset needs a generator.
    assert set(MAKERS) == set(list_datasets())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_registered_dataset_contract(name: str, layout_specs: dict[str, str]) -> None:
    info = get_dataset_info(name)
    assert info.usage and info.summary and info.kind in ("image", "text")
    for split in (
        "train",
        "test",
    ):  # "test" is the evaluation split everywhere (GLUE: alias of dev)
        ds = load_dataset(layout_specs[name], split)
        assert isinstance(ds, LabeledDataset)
        assert ds.kind == info.kind and ds.name == name
        assert len(ds) == len(ds.targets) > 0
        assert all(isinstance(t, int) and 0 <= t < len(ds.classes) for t in ds.targets)
        assert all(isinstance(c, str) and c for c in ds.classes)
        assert len(set(ds.classes)) == len(ds.classes)
        sample, label = ds[len(ds) - 1]
        assert label == ds.targets[-1]
        if ds.kind == "text":
            assert isinstance(sample, tuple) and all(isinstance(s, str) for s in sample)
        else:
            assert hasattr(sample, "size") or isinstance(sample, torch.Tensor)
    train = load_dataset(layout_specs[name], "train")
    assert np.all(train.class_counts() > 0)  # no empty class in a training split


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_auto_split_is_the_evaluation_split(name: str, layout_specs: dict[str, str]) -> None:
    """``auto`` reads what ``test`` reads wherever a dataset has a held-out split."""
    auto = load_dataset(layout_specs[name], "AUTO")
    test = load_dataset(layout_specs[name], "test")
    assert (auto.split, auto.targets) == (test.split, test.targets)


def test_parse_spec_forms(tmp_path: Path) -> None:
    assert parse_data_spec(f"cub200:{tmp_path}") == DataSpec("cub200", tmp_path)
    assert parse_data_spec("fashion-mnist") == DataSpec("fashion-mnist", None)
    assert parse_data_spec(" Stanford_Dogs:/x ") == DataSpec("stanford-dogs", Path("/x"))
    assert parse_data_spec("digits") == DataSpec("digits")
    assert parse_data_spec("imagefolder:~/pics").root == Path.home() / "pics"
    assert str(DataSpec("cub200", Path("/data/cub"))) == "cub200:/data/cub"


def test_unknown_dataset_lists_known_ones() -> None:
    with pytest.raises(
        DataError, match=r"expected a dataset name in \[.*'cub200'.*\], found 'cifar10'"
    ):
        load_dataset("cifar10:/x")


@pytest.mark.parametrize("bad", ["", "   ", ":/x"])
def test_empty_spec(bad: str) -> None:
    with pytest.raises(DataError, match="expected"):
        parse_data_spec(bad)


def test_root_required_refused_or_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"expected a root directory for cub200 .*found 'cub200'"):
        load_dataset("cub200")
    with pytest.raises(DataError, match=r"expected no root for digits"):
        load_dataset("digits:/some/where")
    missing = tmp_path / "nope"
    with pytest.raises(
        DataError, match=rf"expected the stanford-dogs root directory at {missing}, found nothing"
    ):
        load_dataset(f"stanford-dogs:{missing}")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(DataError, match="expected the cub200 root to be a directory, found a file"):
        load_dataset(f"cub200:{a_file}")


def test_split_names_and_aliases(layout_specs: dict[str, str]) -> None:
    with pytest.raises(
        DataError, match=r"expected a split of cub200 in \['train', 'test'\], found 'val'"
    ):
        load_dataset(layout_specs["cub200"], "val")
    sst = layout_specs["glue-sst2"]
    assert load_dataset(sst, "test").split == "dev"
    assert load_dataset(sst, "DEV").targets == load_dataset(sst, "validation").targets
    with pytest.raises(DataError, match=r"expected a split of glue-sst2 in \['train', 'dev'"):
        load_dataset(sst, "dev-mismatched")
    assert load_dataset(layout_specs["glue-mnli"], "dev_mismatched").split == "dev-mismatched"


def test_register_a_dataset_in_one_decorator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(spec_module, "_REGISTRY", dict(spec_module._REGISTRY))
    from spectral_probe.data import TextDataset

    @register_dataset("toy-text", kind="text", splits=("train", "test"), usage="toy-text:/dir")
    def _load(root: Path | None, split: str, transform: object) -> TextDataset:
        return TextDataset([("a",), ("b",)], [0, 1], ["x", "y"], name="toy-text", split=split)

    assert "toy-text" in list_datasets()
    ds = load_dataset(f"toy-text:{tmp_path}", "test")
    assert ds.targets == [0, 1] and ds[1] == (("b",), 1)
    with pytest.raises(ValueError, match="registered twice"):
        register_dataset("toy-text", kind="text")(_load)
