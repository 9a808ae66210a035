"""Class lists in data specs (``NAME[CLASSES][:ROOT]``): parsing, relabelling, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _fixtures.cli import one_line_error
from _fixtures.datasets import make_imagefolder

from spectral_probe.data import (
    DataSpec,
    load_dataset,
    make_loader,
    make_splits,
    parse_data_spec,
    per_class_counts,
    sample_per_class,
)
from spectral_probe.errors import DataError
from spectral_probe.training.config import FinetuneConfig

CONFUSABLE = ["T-shirt/top", "Pullover", "Coat", "Shirt"]


@pytest.mark.parametrize(
    ("spec", "name", "classes", "root"),
    [
        ("fashion-mnist[0,2,4,6]", "fashion-mnist", ("0", "2", "4", "6"), None),
        ("fashion-mnist[T-shirt/top,pullover,coat,shirt]", "fashion-mnist", None, None),
        ("imagefolder[cat,dog]:/data/pets", "imagefolder", ("cat", "dog"), Path("/data/pets")),
        ("digits[9,0]", "digits", ("9", "0"), None),
        ("Fashion_MNIST[ 0 , 2 ]", "fashion-mnist", ("0", "2"), None),
    ],
)
def test_parse_and_round_trip(spec, name, classes, root):
    parsed = parse_data_spec(spec)
    assert parsed.name == name and parsed.root == root
    if classes is not None:
        assert parsed.classes == classes
    assert parse_data_spec(str(parsed)) == parsed
    if " " not in spec and spec == spec.lower():
        assert str(parsed) == spec


def test_plain_spec_unchanged():
    assert parse_data_spec("digits").classes is None
    assert str(parse_data_spec("fashion-mnist")) == "fashion-mnist"
    assert str(DataSpec("cub200", Path("/data/cub"))) == "cub200:/data/cub"
    # brackets inside a root are part of the path, as before
    assert parse_data_spec("imagefolder:/data/x[1]") == DataSpec("imagefolder", Path("/data/x[1]"))


@pytest.mark.parametrize(
    "run",
    [
        ("digits", "digits-l2+bss-15pct-s0-911ddca133"),
        ("fashion-mnist", "fashion-mnist-l2+bss-15pct-s0-f977732436"),
        ("imagefolder:/data/pets", "imagefolder-l2+bss-15pct-s0-7e882987f7"),
    ],
)
def test_run_id_of_a_plain_spec_is_unchanged(run):
    data, run_id = run  # ids computed before class lists existed
    assert FinetuneConfig(data=data, method="l2+bss", rate="15%").run_id == run_id


def test_run_id_of_a_class_list_differs():
    plain = FinetuneConfig(data="digits", method="l2+bss", rate="15%")
    picked = FinetuneConfig(data="digits[0,1,2]", method="l2+bss", rate="15%")
    assert picked.run_id != plain.run_id and picked.run_id.startswith("digits_0_1_2_-")


def test_labels_reindexed_in_the_order_given():
    full = load_dataset("digits", "test")
    ds = load_dataset("digits[3,1,2]", "test")
    assert ds.classes == ["3", "1", "2"]
    original = np.asarray(full.targets)
    keep = np.flatnonzero(np.isin(original, [3, 1, 2]))
    assert len(ds) == len(keep)
    mapping = {3: 0, 1: 1, 2: 2}
    assert ds.targets == [mapping[int(t)] for t in original[keep]]
    assert [int(c) for c in ds.class_counts()] == [int((original == c).sum()) for c in (3, 1, 2)]
    for i in (0, 5, len(ds) - 1):  # samples and labels follow one another
        sample, label = ds[i]
        assert label == ds.targets[i]
        assert (sample == full[int(keep[i])][0]).all()
    images, labels = ds[[0, 1, 2, 3]]  # the batch path maps labels too
    assert labels.tolist() == ds.targets[:4] and images.shape[0] == 4


def test_subset_transform_and_loader_keep_the_relabelling():
    ds = load_dataset("digits[9,0]", "train")
    idx = np.arange(0, len(ds), 3)
    sub = ds.with_transform(lambda x: x.float()).subset(idx)
    assert sub.classes == ["9", "0"] and sub.targets == [ds.targets[i] for i in idx]
    seen = [int(y) for _, ys in make_loader(sub, batch_size=16) for y in ys]
    assert seen == sub.targets and set(seen) == {0, 1}


def test_fashion_mnist_names_and_indices_agree(layout_specs):
    root = layout_specs["fashion-mnist"].partition(":")[2]
    by_name = f"fashion-mnist[T-shirt/top,pullover,coat,shirt]:{root}"
    by_index = f"fashion-mnist[0,2,4,6]:{root}"
    for split in ("train", "test", "auto"):  # every split is restricted the same way
        a, b = load_dataset(by_name, split), load_dataset(by_index, split)
        assert a.classes == b.classes == CONFUSABLE
        assert a.targets == b.targets and set(a.targets) <= {0, 1, 2, 3}
        full = load_dataset(f"fashion-mnist:{root}", split)
        assert len(a) == int(np.isin(full.targets, [0, 2, 4, 6]).sum())


def test_imagefolder_class_names(tmp_path):
    root = make_imagefolder(tmp_path, class_names=["bird", "cat", "dog"], per_class=2)
    ds = load_dataset(f"imagefolder[dog,cat]:{root}", "test")
    assert ds.classes == ["dog", "cat"] and sorted(ds.targets) == [0, 0, 1, 1]
    assert load_dataset(f"imagefolder[2,1]:{root}", "train").classes == ["dog", "cat"]


def test_sampling_rate_per_class_on_a_subset():
    full = load_dataset("digits", "train")
    ds = load_dataset("digits[0,2,4]", "train")
    picked = sample_per_class(ds.targets, "5%", seed=0, classes=ds.classes)
    got = np.bincount(np.asarray(ds.targets)[picked], minlength=3).tolist()
    want = per_class_counts(full.targets, "5%")
    assert got == [want[0], want[2], want[4]]
    splits = make_splits(ds.targets, rate="50%", val=0.2, seed=0, classes=ds.classes)
    used = np.concatenate([splits.train, splits.val])
    assert set(np.asarray(ds.targets)[splits.val].tolist()) == {0, 1, 2}
    assert len(set(used.tolist())) == len(used)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("digits[0]", "expected at least 2 classes in the class list of digits, found 1"),
        ("digits[0,0]", "expected distinct classes in the class list of digits, found '0' twice"),
        ("digits[0,1,,2]", "expected class indices or names without"),
        ("digits[0,10]", "expected class indices in 0..9 for digits, found 10"),
        ("digits[0,seven]", "expected a class index or one of the class names of digits"),
        ("digits[0,1", "expected a data spec NAME[CLASSES][:ROOT]"),
        ("digits[0][1]", "expected a data spec NAME[CLASSES][:ROOT]"),
        ("glue-sst2[0,1]:/x", "expected no class list for glue-sst2"),
    ],
)
def test_errors(spec, message):
    with pytest.raises(DataError) as info:
        load_dataset(spec, "test")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_errors_found_when_loading_and_names_first(layout_specs, tmp_path):
    root = layout_specs["fashion-mnist"].partition(":")[2]
    with pytest.raises(DataError, match="found 'jumper'"):
        load_dataset(f"fashion-mnist[coat,jumper]:{root}", "train")
    with pytest.raises(DataError, match=r"found 'Coat' \(class 4\) twice"):
        load_dataset(f"fashion-mnist[coat,4]:{root}", "train")
    # a class name wins over an index: "2" is the folder named 2 (class 1), "0" is class 0
    folder = make_imagefolder(tmp_path, class_names=["1", "2", "3"], per_class=1)
    assert load_dataset(f"imagefolder[2,0]:{folder}", "train").classes == ["2", "1"]
    with pytest.raises(DataError, match=r"found '1' \(class 0\) twice"):
        load_dataset(f"imagefolder[1,0]:{folder}", "train")


def test_feature_spectrum_cli_on_a_class_subset(tmp_path, one_torch_thread):
    from spectral_probe_cli.main import app
    from typer.testing import CliRunner

    runner = CliRunner()
    args = ["feature-spectrum", "bundled:efficientnet_lite0", "--data", "digits[0,1,2]"]
    small = ["--rate", "5", "--batch-size", "5", "--max-batches", "1", "--image-size", "32"]
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        [*args, *small, "--device", "cpu", "-q", "--no-figures", "--out", str(out)],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["data"] == "digits[0,1,2]" and meta["n_samples"] == 15  # 5 of each of 3
    bad = runner.invoke(
        app, ["feature-spectrum", "bundled:efficientnet_lite0", "--data", "digits[0,0]"]
    )
    assert "found '0' twice" in one_line_error(bad)


def test_finetune_on_a_class_subset(tmp_path, one_torch_thread):
    import training._tiny  # noqa: F401  (registers the test-only ``tiny`` model source)
    from training.conftest import tiny_config

    from spectral_probe.training import finetune

    cfg = tiny_config(data="digits[0,1,2]", rate="50%", val="20%", iterations=10)
    finetune(cfg, tmp_path / cfg.run_id)
    info = json.loads((tmp_path / cfg.run_id / "config.json").read_text())
    assert info["config"]["data"] == "digits[0,1,2]"
    assert info["data"]["num_classes"] == 3 and info["data"]["classes"] == ["0", "1", "2"]
    full = load_dataset("digits[0,1,2]", "train")
    splits = make_splits(full.targets, rate="50%", val="20%", seed=0, classes=full.classes)
    assert (info["data"]["train_size"], info["data"]["val_size"]) == (
        len(splits.train),
        len(splits.val),
    )
