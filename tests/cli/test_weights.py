"""``spectral-probe compare-weights`` and ``layers`` through Typer's CliRunner."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from spectral_probe_cli.main import app


def _invoke(runner, args):
    return runner.invoke(app, args, catch_exceptions=False)


def test_end_to_end_bundled_vs_perturbed(runner, perturbed_lite0, tmp_path):
    out = tmp_path / "report"
    res = _invoke(
        runner,
        [
            "compare-weights",
            "bundled:efficientnet_lite0",
            str(perturbed_lite0),
            "--out",
            str(out),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "conv_stem" in res.stdout and "skipped 1 layer" in res.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 49 and (summary["status"] == "ok").all()
    assert summary["cos_top"].min() > 0.99  # a 1e-3 perturbation keeps the leading vectors
    assert pd.read_csv(out / "skipped.csv")["layer"].tolist() == ["classifier"]
    payload = json.loads((out / "results.json").read_text())
    assert payload["meta"]["model_b"] == str(perturbed_lite0)
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "compare-weights" and config["options"]["vectors"] == "left"
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == [
        "angle_heatmap.png",
        "angle_heatmap_window.png",
        "corresponding_angles.png",
        "corresponding_angles_window.png",
        "intruder_sweep.png",
        "intruders_by_depth.png",
        "similarity_matrix.png",
        "update_energy.png",
        "weight_spectra.png",
    ]
    assert all((out / "figures" / f).stat().st_size > 10_000 for f in figures)
    assert not list(tmp_path.glob(".*partial"))


def test_json_and_csv_on_stdout(runner, perturbed_lite0):
    res = _invoke(
        runner,
        [
            "compare-weights",
            "bundled:efficientnet_lite0",
            str(perturbed_lite0),
            "--json",
            "-q",
            "--include",
            "^blocks\\.6",
        ],
    )
    assert res.exit_code == 0
    payload = json.loads(res.stdout)
    assert [layer["layer"] for layer in payload["layers"]] == [
        "blocks.6.0.conv_pw",
        "blocks.6.0.conv_dw",
        "blocks.6.0.conv_pwl",
    ]
    assert len(payload["layers"][0]["cos"]) == 192
    res = _invoke(
        runner,
        [
            "compare-weights",
            "bundled:efficientnet_lite0",
            str(perturbed_lite0),
            "--csv",
            "-q",
            "--include",
            "conv_stem",
        ],
    )
    assert res.stdout.splitlines()[0].startswith("layer,kind,type,rows,cols,rank,status")


def test_state_dict_with_arch_and_split_groups(runner, perturbed_lite0, tmp_path):
    from spectral_probe.models import read_state_dict

    torch.save(read_state_dict(perturbed_lite0), tmp_path / "plain.pth")
    res = _invoke(
        runner,
        [
            "compare-weights",
            "bundled:efficientnet_lite0",
            str(tmp_path / "plain.pth"),
            "--arch-b",
            "bundled:efficientnet_lite0",
            "--include",
            "blocks.0.0.conv_dw",
            "--split-groups",
            "--json",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    names = [layer["layer"] for layer in json.loads(res.stdout)["layers"]]
    assert names[:2] == ["blocks.0.0.conv_dw:g0", "blocks.0.0.conv_dw:g1"] and len(names) == 32


def test_nan_weights_are_flagged_not_fatal(runner, tmp_path):
    from spectral_probe.models import load_model, save_checkpoint

    lm = load_model("torchvision:resnet18")
    with torch.no_grad():
        lm.model.layer1[0].conv1.weight[0, 0, 0, 0] = float("inf")
    save_checkpoint(tmp_path / "bad.safetensors", lm.model, base="torchvision:resnet18", head="fc")
    res = _invoke(
        runner,
        [
            "compare-weights",
            "torchvision:resnet18",
            str(tmp_path / "bad.safetensors"),
            "--json",
            "-q",
            "--include",
            "^layer1\\.0",
        ],
    )
    assert res.exit_code == 0
    status = {layer["layer"]: layer["status"] for layer in json.loads(res.stdout)["layers"]}
    assert status == {"layer1.0.conv1": "nonfinite-b", "layer1.0.conv2": "ok"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch:model", "torchvision:resnet18"], "unknown model source 'nosuch'"),
        (["torchvision:resnet18", "missing.safetensors"], "no such checkpoint file"),
        (
            ["bundled:efficientnet_lite0", "torchvision:resnet18"],
            "share layers of the same name and shape, found none",
        ),
        (
            ["torchvision:resnet18", "torchvision:resnet18", "--include", "("],
            "regular expression for --include",
        ),
        (["torchvision:resnet18", "torchvision:resnet18", "--kinds", "conv,dense"], "layer kinds"),
        (
            ["torchvision:resnet18", "torchvision:resnet18", "--threshold", "2"],
            "threshold in (0, 1]",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(runner, args, message):
    res = _invoke(runner, ["compare-weights", *args, "-q"])
    assert res.exit_code == 2
    assert message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "Traceback" not in res.output


def test_corrupt_and_pickled_checkpoints(runner, perturbed_lite0, tmp_path):
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(perturbed_lite0.read_bytes()[:5000])
    res = _invoke(
        runner,
        [
            "compare-weights",
            "bundled:efficientnet_lite0",
            str(cut),
            "--arch",
            "bundled:efficientnet_lite0",
            "-q",
        ],
    )
    assert res.exit_code == 2 and "not a complete safetensors file" in res.stderr
    torch.save(torch.nn.Linear(2, 2), tmp_path / "pickled.pt")
    res = _invoke(
        runner,
        [
            "compare-weights",
            "torchvision:resnet18",
            str(tmp_path / "pickled.pt"),
            "--arch",
            "torchvision:resnet18",
            "-q",
        ],
    )
    assert res.exit_code == 2 and "refusing to load" in res.stderr


def test_unwritable_out_leaves_nothing(runner, perturbed_lite0, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    res = _invoke(
        runner,
        [
            "compare-weights",
            "bundled:efficientnet_lite0",
            str(perturbed_lite0),
            "--out",
            str(blocker / "sub"),
            "-q",
        ],
    )
    assert res.exit_code == 2 and "is a file" in res.stderr
    res = _invoke(
        runner,
        [
            "compare-weights",
            "bundled:efficientnet_lite0",
            str(perturbed_lite0),
            "--out",
            str(blocker),
            "-q",
        ],
    )
    assert res.exit_code == 2 and "found a file" in res.stderr
    # a failure after the analysis (unknown --plot-layer) must not leave partial results
    out = tmp_path / "never"
    res = _invoke(
        runner,
        [
            "compare-weights",
            "bundled:efficientnet_lite0",
            str(perturbed_lite0),
            "--out",
            str(out),
            "--plot-layer",
            "no.such.layer",
            "-q",
        ],
    )
    assert res.exit_code == 2 and "--plot-layer" in res.stderr
    assert not out.exists() and not list(tmp_path.glob(".never*"))


def test_layers_command(runner):
    res = _invoke(runner, ["layers", "bundled:efficientnet_lite0", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.stdout)
    assert len(rows) == 50 and rows[0]["name"] == "conv_stem" and rows[0]["matrix"] == "32x27"
    res = _invoke(
        runner,
        ["layers", "torchvision:resnet18", "--modules", "--csv", "--include", "^layer1\\.0\\.conv"],
    )
    assert res.stdout.splitlines() == [
        "name,type,params,leaf",
        "layer1.0.conv1,Conv2d,36864,True",
        "layer1.0.conv2,Conv2d,36864,True",
    ]
    res = _invoke(runner, ["layers", "bundled:efficientnet_lite0"])
    assert "head: classifier" in res.stdout


def test_version_and_help(runner):
    assert _invoke(runner, ["--version"]).stdout.startswith("spectral-probe ")
    assert "compare-weights" in _invoke(runner, ["--help"]).stdout
