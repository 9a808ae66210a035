"""A newcomer's first calls: a plain one-folder-per-class ImageFolder works without flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures.cli import one_line_error
from _fixtures.datasets import make_imagefolder
from spectral_probe_cli.main import app
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ["--batch-size", "4", "--image-size", "32", "--device", "cpu", "-q"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ROOT/<class>/*.png``: 3 classes of 4 images, no train/ or test/ folders."""
    return make_imagefolder(tmp_path_factory.mktemp("photos"), 3, 4, split_folders=False, size=16)


def test_feature_spectrum_reads_every_image_of_a_single_folder(
    runner: CliRunner, folder: Path
) -> None:
    res = runner.invoke(
        app,
        [
            "feature-spectrum",
            "bundled:efficientnet_lite0",
            "--data",
            f"imagefolder:{folder}",
            *TINY,
            "--json",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    meta = json.loads(res.stdout)["meta"]
    assert (meta["split"], meta["n_samples"]) == ("all", 12)
    summary = runner.invoke(
        app,
        [
            "feature-spectrum",
            "bundled:efficientnet_lite0",
            "--data",
            f"imagefolder:{folder}",
            *TINY,
        ],
    )
    assert summary.exit_code == 0, summary.output
    assert "(split all, 12 samples)" in summary.stdout


def test_errors_name_the_flag_that_fixes_them(runner: CliRunner, folder: Path) -> None:
    args = ["feature-spectrum", "bundled:efficientnet_lite0", "--data", f"imagefolder:{folder}"]
    error = one_line_error(runner.invoke(app, [*args, *TINY, "--split", "test"]))
    assert "single-folder layout" in error and "--split all" in error
    error = one_line_error(runner.invoke(app, [*args, "--device", "cpu", "-q"]))  # 12 images < 48
    assert "found 12 in imagefolder/all" in error and "--batch-size" in error


def test_finetune_holds_out_a_test_share_of_a_single_folder(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Training on ``ROOT/<class>/`` keeps 20% of each class as its test set, the same for every seed."""
    from training import _tiny  # noqa: F401  (registers the tiny:cnn model source)

    folder = make_imagefolder(tmp_path / "photos", 3, 10, split_folders=False, size=8)
    args = [
        "finetune",
        "--model",
        "tiny:cnn",
        "--data",
        f"imagefolder:{folder}",
        "--batch-size",
        "4",
        "--image-size",
        "8",
        "--single-crop",
        "--iterations",
        "2",
        "--val",
        "0",
        "-q",
        "--json",
    ]
    infos = []
    for seed in ("0", "1"):
        res = runner.invoke(app, [*args, "--seed", seed, "--run-dir", str(tmp_path / seed)])
        assert res.exit_code == 0, res.output
        infos.append(json.loads((tmp_path / seed / "config.json").read_text())["data"])
    for data in infos:
        assert (data["test_holdout"], data["test_size"], data["train_size"]) == ("20%", 6, 24)
    bad = runner.invoke(
        app, [*args, "--task-option", "holdout=1.5", "--run-dir", str(tmp_path / "x")]
    )
    assert "holdout" in one_line_error(bad)
