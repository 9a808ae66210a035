"""``spectral-probe layers``: ``--esd`` end to end on the bundled models (the listings:
test_weights.py, test_plain_state_dicts.py, test_layer_tables.py)."""

from __future__ import annotations

import io
import json

import pandas as pd
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app


def _invoke(runner, args):
    return runner.invoke(app, args, catch_exceptions=False)


def test_layers_esd_table_json_csv_and_out(runner, tmp_path):
    base = [
        "layers",
        "bundled:efficientnet_lite0",
        "--esd",
        "-q",
        "--include",
        "blocks.6|conv_stem",
    ]
    res = _invoke(runner, base)
    assert res.exit_code == 0, res.output
    assert (
        "conv_stem" in res.stdout
        and "ESD of 4 weight matrices" in res.stdout
        and "mean α" in res.stderr
    )
    payload = json.loads(_invoke(runner, [*base, "--json"]).stdout)
    layers = {row["layer"]: row for row in payload["layers"]}
    assert set(layers) == {
        "conv_stem",
        "blocks.6.0.conv_pw",
        "blocks.6.0.conv_dw",
        "blocks.6.0.conv_pwl",
    }
    assert all(row["alpha"] > 1 and row["conv"] == "unfolded" for row in layers.values())
    assert payload["summary"]["fitted"] == 4
    frame = pd.read_csv(io.StringIO(_invoke(runner, [*base, "--csv"]).stdout))
    assert frame["alpha"].tolist() == [layers[n]["alpha"] for n in frame["layer"]]
    out = tmp_path / "esd"
    res = _invoke(
        runner, [*base, "--esd-conv", "slices", "--out", str(out), "--esd-layer", "conv_stem"]
    )
    assert res.exit_code == 0, res.output
    sliced = pd.read_csv(out / "esd.csv").set_index("layer")
    assert (
        sliced.loc["conv_stem", "conv"] == "slices"
        and sliced.loc["blocks.6.0.conv_dw", "conv"] == "unfolded"
    )
    assert (
        sliced.loc["conv_stem", "alpha"] != layers["conv_stem"]["alpha"]
    )  # the two conventions differ
    evals = pd.read_csv(out / "eigenvalues.csv")
    assert evals.groupby("layer").size().to_dict() == sliced["n_evals"].to_dict()
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "alpha_profile.png",
        "esd_fits.png",
    ]


def test_layers_esd_on_minilm_csv(runner):
    res = _invoke(
        runner,
        ["layers", "bundled:minilm-l6", "--esd", "--csv", "-q", "--no-mp", "--include", "layer.0"],
    )
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(io.StringIO(res.stdout))
    assert len(frame) == 6 and frame["alpha"].notna().all() and "mp_softrank" in frame


def test_esd_user_errors_are_one_line(runner, tmp_path):
    line = one_line_error(
        runner.invoke(app, ["layers", "bundled:efficientnet_lite0", "--out", str(tmp_path / "x")])
    )
    assert "--esd" in line
    line = one_line_error(
        runner.invoke(app, ["layers", "bundled:efficientnet_lite0", "--esd", "--modules"])
    )
    assert "found both" in line
    line = one_line_error(
        runner.invoke(
            app,
            [
                "layers",
                "bundled:efficientnet_lite0",
                "--esd",
                "-q",
                "--include",
                "conv_stem",
                "--out",
                str(tmp_path / "y"),
                "--esd-layer",
                "nope",
            ],
        )
    )
    assert "nope" in line
