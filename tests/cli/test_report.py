"""``spectral-probe report`` and the demo's pieces through the CLI."""

from __future__ import annotations

import json

import pytest
import training._tiny  # noqa: F401  (registers the test-only ``tiny`` model source)
from _fixtures.datasets import make_imagefolder
from spectral_probe_cli.main import app

TINY = [
    "--model",
    "tiny:cnn",
    "--data",
    "digits",
    "--method",
    "l2",
    "--method",
    "l2+bss",
    "--seed",
    "0",
    "--iterations",
    "6",
    "--image-size",
    "8",
    "--eval-max",
    "100",
    "--device",
    "cpu",
    "-q",
]


def test_report_command_and_refusal_to_overwrite(runner, tmp_path):
    out = tmp_path / "rep"
    res = runner.invoke(app, ["report", *TINY, "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().endswith("index.html")
    assert "recommendation:" in res.stderr
    payload = json.loads((out / "report.json").read_text())
    assert payload["settings"]["methods"] == ["l2", "l2+bss"]
    res = runner.invoke(app, ["report", *TINY, "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 2 and "--overwrite" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    res = runner.invoke(
        app, ["report", *TINY, "--out", str(out), "--overwrite"], catch_exceptions=False
    )
    assert res.exit_code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "nosuch:thing", "--data", "digits"], "unknown model source 'nosuch'"),
        (
            ["--model", "tiny:cnn", "--data", "digits", "--method", "l2"],
            "at least two distinct methods",
        ),
        (["--model", "tiny:cnn", "--data", "digits", "--rate", "150%"], "rate"),
        (["--model", "tiny:cnn", "--data", "nosuchdata"], "nosuchdata"),
    ],
)
def test_bad_input(runner, tmp_path, args, message):
    res = runner.invoke(
        app, ["report", *args, "--out", str(tmp_path / "r"), "-q"], catch_exceptions=False
    )
    assert res.exit_code == 2 and message in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_dataset_too_small_for_pilot_splits(runner, tmp_path):
    root = make_imagefolder(tmp_path / "tiny", n_classes=3, per_class=2)
    res = runner.invoke(
        app,
        [
            "report",
            "--model",
            "tiny:cnn",
            "--data",
            f"imagefolder:{root}",
            "--out",
            str(tmp_path / "r"),
            "-q",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 2 and "pilot" in res.stderr
    assert not (tmp_path / "r" / "index.html").exists()


def test_demo_settings_and_extras(tiny_report_cli, tmp_path):
    from spectral_probe.report.demo import demo_settings, write_demo_extras

    cpu = demo_settings("cpu")
    assert cpu.model == "bundled:efficientnet_lite0" and cpu.data == "fashion-mnist"
    assert cpu.methods == ("l2", "l2+bss") and len(cpu.rates) == 2 and cpu.preset == "demo"
    assert any("Scaled down" in line for line in cpu.scaled_down)
    written = write_demo_extras(tiny_report_cli, tmp_path)
    assert (written["compare-weights"] / "summary.csv").is_file()
    assert (written["feature-spectrum"] / "figures" / "batch_spectra_half.png").is_file()


@pytest.fixture(scope="module")
def tiny_report_cli(tmp_path_factory):
    from spectral_probe.report import ReportSettings, build_report

    settings = ReportSettings(
        model="tiny:cnn",
        data="digits",
        methods=("l2", "l2+bss"),
        seeds=(0,),
        iterations=6,
        image_size=8,
        eval_max=100,
        spectrum_batches=2,
        device="cpu",
    )
    return build_report(settings, tmp_path_factory.mktemp("demo"))
