"""``spectral-probe feature-spectrum`` through Typer's CliRunner."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app

SMALL = [
    "--data",
    "digits",
    "--batch-size",
    "12",
    "--max-batches",
    "2",
    "--image-size",
    "32",
    "--device",
    "cpu",
    "-q",
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _invoke(runner, args):
    return runner.invoke(app, args, catch_exceptions=False)


def test_bundled_vs_finetuned_checkpoint_to_out_dir(runner, perturbed_lite0, tmp_path):
    out = tmp_path / "spectra"
    res = _invoke(
        runner,
        [
            "feature-spectrum",
            "bundled:efficientnet_lite0",
            str(perturbed_lite0),
            "--split",
            "test",
            *SMALL,
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "bundled:efficientnet_lite0" in res.stdout and "ft0/model.safetensors" in res.stdout
    summary = pd.read_csv(out / "summary.csv")
    assert summary["model"].tolist() == ["bundled:efficientnet_lite0", str(perturbed_lite0)]
    assert (
        (summary["d"] == 1280).all()
        and (summary["k"] == 12).all()
        and (summary["n_batches"] == 2).all()
    )
    # a 1e-3 perturbation barely moves the spectrum
    spec = pd.read_csv(out / "spectrum.csv").query("quantity == 'sigma'")
    a, b = (spec[spec["model"] == m]["mean"].to_numpy() for m in summary["model"])
    assert abs(a - b).max() < 0.05 * a.max()
    assert len(pd.read_csv(out / "batches.csv")) == 2 * 2 * 12
    assert len(pd.read_csv(out / "dataset.csv")) == 2 * 24  # N = 24 < d: min(N, d) values each
    payload = json.loads((out / "results.json").read_text())
    assert payload["meta"]["split"] == "test" and len(payload["spectra"]) == 2
    # each model's own resizing (the checkpoint keeps its base's bicubic), recorded per model
    assert [m["interpolation"] for m in payload["meta"]["models"].values()] == [
        "bicubic",
        "bicubic",
    ]
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "feature-spectrum" and config["options"]["batch_size"] == 12
    assert config["options"]["interpolation"] is None
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == [
        "batch_spectra.png",
        "batch_spectra_normalised.png",
        "batch_spectra_small_half.png",
        "dataset_spectrum.png",
    ]
    assert all((out / "figures" / f).stat().st_size > 10_000 for f in figures)
    assert not list(tmp_path.glob(".*partial"))


def test_json_csv_layers_labels_and_rate(runner):
    res = _invoke(
        runner,
        [
            "feature-spectrum",
            "torchvision:resnet18",
            "torchvision:resnet18",
            "--label",
            "pre",
            "--label",
            "ft",
            "--layer",
            "penultimate",
            "--layer",
            "layer3",
            "--rate",
            "20",
            "--center",
            "--json",
            *SMALL,
        ],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [(e["model"], e["layer"], e["d"]) for e in payload["spectra"]] == [
        ("pre", "penultimate", 512),
        ("pre", "layer3", 256),
        ("ft", "penultimate", 512),
        ("ft", "layer3", 256),
    ]
    assert payload["meta"]["n_samples"] == 200 and payload["meta"]["center"] is True
    assert len(payload["spectra"][0]["spectrum"]["sigma"]["mean"]) == 12
    res = _invoke(
        runner,
        ["feature-spectrum", "torchvision:resnet18", "--csv", "--no-dataset-spectrum", *SMALL],
    )
    assert res.exit_code == 0
    assert (
        res.stdout.splitlines()[0]
        == "model,layer,quantity,index,n,mean,std,sem,ci_low,ci_high,median,min,max"
    )
    assert len(res.stdout.splitlines()) == 1 + 3 * 12


def test_interpolation_option_overrides_every_model(runner, tmp_path):
    out = tmp_path / "nearest"
    res = _invoke(
        runner,
        [
            "feature-spectrum",
            "torchvision:resnet18",
            "--interpolation",
            "nearest",
            "--no-figures",
            *SMALL,
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert (
        meta["interpolation"] == "nearest"
        and meta["models"]["torchvision:resnet18"]["interpolation"] == "nearest"
    )
    assert json.loads((out / "config.json").read_text())["options"]["interpolation"] == "nearest"
    assert "--interpolation" in _invoke(runner, ["feature-spectrum", "--help"]).stdout
    error = one_line_error(
        _invoke(
            runner,
            ["feature-spectrum", "torchvision:resnet18", *SMALL, "--interpolation", "lanczos"],
        )
    )
    assert "expected an interpolation in bilinear, bicubic, nearest, found 'lanczos'" in error


def test_text_model_on_glue(runner, tmp_path):
    from _fixtures.datasets import make_glue_task

    root = make_glue_task(tmp_path, "sst2", n=8, n_dev=12)
    res = _invoke(
        runner,
        [
            "feature-spectrum",
            "bundled:minilm-l6",
            "--data",
            f"glue-sst2:{root}",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--json",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    entry = json.loads(res.stdout)["spectra"][0]
    assert entry["d"] == 384 and entry["n_batches"] == 3 and entry["site"].startswith("[CLS] token")


def _nan_checkpoint(tmp: Path) -> list[str]:
    from spectral_probe.models import load_model, save_checkpoint

    lm = load_model("torchvision:resnet18")
    with torch.no_grad():
        lm.model.layer4[1].bn2.bias[0] = float("nan")
    save_checkpoint(tmp / "nan.safetensors", lm.model, base="torchvision:resnet18", head="fc")
    return [str(tmp / "nan.safetensors"), *SMALL]


def _no_split_file(tmp: Path) -> list[str]:
    from _fixtures.datasets import make_cub200

    os.remove(make_cub200(tmp) / "train_test_split.txt")
    return ["torchvision:resnet18", "--data", f"cub200:{tmp}", "-q"]


def _empty_class(tmp: Path) -> list[str]:
    from _fixtures.datasets import make_imagefolder

    make_imagefolder(tmp, 3, 4)
    (tmp / "test" / "class_01").mkdir(exist_ok=True)
    for f in (tmp / "test" / "class_01").iterdir():
        f.unlink()
    return ["torchvision:resnet18", "--data", f"imagefolder:{tmp}", "-q"]


def _out_is_a_file(tmp: Path) -> list[str]:
    (tmp / "file").write_text("x")
    return ["torchvision:resnet18", *SMALL, "--out", str(tmp / "file")]


RN = ["torchvision:resnet18"]
BAD = {
    "missing root": (
        lambda t: [*RN, "--data", "cub200:/no/such/dir", "-q"],
        "expected the cub200 root directory at /no/such/dir",
    ),
    "missing split file": (_no_split_file, "split list file train_test_split.txt"),
    "empty class": (_empty_class, "found none (an empty class)"),
    "unknown dataset": (lambda t: [*RN, "--data", "cifar10", "-q"], "expected a dataset name in"),
    "rate above 1": (
        lambda t: [*RN, *SMALL, "--rate", "1.5"],
        "sampling rate in (0, 1] or a per-class count >= 1, found '1.5'",
    ),
    "rate of 0": (lambda t: [*RN, *SMALL, "--rate", "0"], "sampling rate in (0, 1]"),
    "count above a class": (
        lambda t: [*RN, *SMALL, "--rate", "100"],
        "expected a per-class count of at most",
    ),
    "unknown layer": (
        lambda t: [*RN, *SMALL, "--layer", "layer5"],
        "found 'layer5'; close matches: layer4",
    ),
    "batch size 1": (lambda t: [*RN, *SMALL, "--batch-size", "1"], "batch size of at least 2"),
    "nan features": (_nan_checkpoint, "expected finite features, found NaN/Inf in batch 1"),
    "too few samples": (
        lambda t: [*RN, *SMALL, "--rate", "1"],
        "at least one full batch of 12 samples, found 10",
    ),
    "labels": (
        lambda t: [*RN, *SMALL, "--label", "a", "--label", "b"],
        "one label per model (1), found 2",
    ),
    "text data, image model": (
        lambda t: [
            *RN,
            "--data",
            f"glue-sst2:{__import__('_fixtures.datasets').datasets.make_glue_task(t, 'sst2')}",
            "-q",
        ],
        "expected image data for torchvision:resnet18",
    ),
    "bad model": (lambda t: ["nosuch:model", *SMALL], "unknown model source 'nosuch'"),
    "out is a file": (_out_is_a_file, "found a file"),
    "bad split": (lambda t: [*RN, *SMALL, "--split", "val"], "expected a split of digits"),
    "bad interpolation": (lambda t: [*RN, *SMALL, "--interpolation", "area"], "found 'area'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_2(runner, tmp_path, case):
    build, message = BAD[case]
    res = _invoke(runner, ["feature-spectrum", *build(tmp_path)])
    assert res.exit_code == 2, res.output
    assert message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_help_lists_the_command(runner):
    assert "feature-spectrum" in _invoke(runner, ["--help"]).stdout
    assert "--max-batches" in _invoke(runner, ["feature-spectrum", "--help"]).stdout
