"""``spectral-probe compare-features`` through Typer's CliRunner, on bundled models."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app
from spectral_probe_cli.similarity import METRIC_NAMES

from spectral_probe.similarity import METRICS

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


def _invoke(runner, args):
    return runner.invoke(app, ["compare-features", *args], catch_exceptions=False)


def test_choices_are_the_registry():
    assert list(METRIC_NAMES) == list(METRICS)


def test_pretrained_vs_perturbed_checkpoint_to_out_dir(runner, perturbed_lite0, tmp_path):
    out = tmp_path / "cf"
    res = _invoke(
        runner,
        [
            "bundled:efficientnet_lite0",
            str(perturbed_lite0),
            *SMALL,
            "--layers",
            r"blocks\.[046]$|penultimate",
            *[f"--metric={m}" for m in METRICS],
            "--sample",
            "20",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "blocks.4" in res.stdout and "debiased-cka" in res.stdout
    matched = pd.read_csv(out / "matched.csv")
    assert matched["layer_a"].tolist() == ["blocks.0", "blocks.4", "blocks.6", "penultimate"]
    assert matched["d_a"].tolist() == [16, 112, 320, 1280]
    # a 1e-3 relative weight perturbation leaves the representations nearly unchanged
    assert (matched[["cka", "rbf-cka"]] > 0.99).all().all()
    assert (matched["procrustes"] < 0.02).all()
    pairs = pd.read_csv(out / "pairs.csv")
    assert len(pairs) == len(METRICS) * 4 * 4
    assert set(pairs.loc[pairs["metric"] == "cka", "n"]) == {24}
    assert set(pairs.loc[pairs["metric"] == "svcca", "n"]) == {20}
    payload = json.loads((out / "results.json").read_text())
    assert payload["meta"]["n_samples"] == 24 and payload["meta"]["sample"] == 20
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "compare-features" and config["options"]["sample"] == 20
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == sorted(["by_depth.png", *[f"heatmap_{m}.png" for m in METRICS]])
    assert not list(tmp_path.glob(".*partial"))


def test_json_and_csv_on_stdout(runner):
    res = _invoke(
        runner,
        [
            "bundled:efficientnet_lite0",
            "bundled:efficientnet_lite0",
            *SMALL,
            "--layers",
            r"blocks\.1$",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [r["cka"] for r in payload["matched"]] == pytest.approx([1.0], abs=1e-9)
    assert payload["meta"]["metrics"] == ["cka", "debiased-cka"]
    res = _invoke(
        runner,
        [
            "bundled:efficientnet_lite0",
            "bundled:efficientnet_lite0",
            *SMALL,
            "--layers",
            r"blocks\.1$",
            "--csv",
            "-m",
            "procrustes",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[0] == "depth,layer_a,layer_b,d_a,d_b,procrustes"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--metric", "nope"], "expected --metric in"),
        (["--layers", "nothing_here"], "to match modules"),
        (["--layers", "("], "regular expression"),
        (["--layers-b", r"blocks\.0$"], None),  # one A layer per B layer is fine; see below
        (["--batch-size", "1"], "batch size"),
    ],
)
def test_bad_input_is_one_line(runner, args, expected):
    res = _invoke(
        runner,
        [
            "bundled:efficientnet_lite0",
            "bundled:efficientnet_lite0",
            *SMALL,
            *(["--layers", r"blocks\.0$"] if "--layers" not in args else []),
            *args,
        ],
    )
    if expected is None:
        assert res.exit_code == 0, res.output
        return
    assert expected in one_line_error(res)


def test_unknown_data_and_model(runner, tmp_path):
    res = _invoke(
        runner, ["bundled:efficientnet_lite0", str(tmp_path / "missing.safetensors"), *SMALL]
    )
    one_line_error(res)
    res = _invoke(
        runner, ["bundled:efficientnet_lite0", "bundled:efficientnet_lite0", "--data", "nope", "-q"]
    )
    one_line_error(res)
