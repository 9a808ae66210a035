"""``layers bundled:NAME`` from the shipped tables: honest data, same output, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources

import pytest
from spectral_probe_cli import _layer_tables
from spectral_probe_cli.main import app

from spectral_probe.extract import KINDS, layer_table
from spectral_probe.models import load_model
from spectral_probe.models.bundled import BUNDLED

TABLES = resources.files("spectral_probe") / "resources" / "layer_tables"


def _shipped(name: str) -> dict:
    return json.loads((TABLES / f"{name}.json").read_text(encoding="utf-8"))


def test_a_table_ships_for_every_bundled_model() -> None:
    assert sorted(p.name for p in TABLES.iterdir()) == sorted(f"{n}.json" for n in BUNDLED)
    assert _layer_tables.KINDS == KINDS


@pytest.mark.parametrize("name", BUNDLED)
def test_shipped_table_is_the_models_layer_table(name: str) -> None:
    """The data stays honest: rerun scripts/make_layer_tables.py when this fails."""
    shipped = _shipped(name)
    loaded = load_model(f"bundled:{name}")
    df = layer_table(loaded.model)
    assert shipped["spec"] == loaded.spec and shipped["head"] == loaded.head
    assert shipped["columns"] == list(df.columns)
    assert shipped["layers"] == df.to_dict(orient="records")
    # made with the installed packages, so the fast path is live
    assert {d: _layer_tables.installed_version(d) for d in shipped["versions"]} == shipped[
        "versions"
    ]


def _invoke(runner, monkeypatch, args: list[str], *, fast: bool) -> str:
    with monkeypatch.context() as m:
        if fast:  # the fast path never builds the model

            def no_model(*a: object, **k: object) -> None:
                raise AssertionError("the fast path built the model")

            m.setattr("spectral_probe.models.load_model", no_model)
        else:  # a recorded version that differs from the installed one forces the slow path
            m.setattr(_layer_tables, "installed_version", lambda dist: "0+other")
        res = runner.invoke(app, ["layers", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["bundled:efficientnet_lite0"],
        ["bundled:efficientnet_lite0", "--json"],
        ["bundled:efficientnet_lite0", "--csv"],
        ["bundled:efficientnet_lite1", "--include", r"blocks\.[12]", "--exclude", "conv_pw"],
        ["bundled:efficientnet_lite2", "--kinds", "linear, conv", "--json"],
        ["bundled:efficientnet_lite0", "--kinds", "attention"],  # nothing left
        ["bundled:efficientnet_lite0", "--kinds", "attention", "--csv"],
        ["bundled:efficientnet_lite0", "--kinds", "attention", "--json"],
        ["bundled:minilm-l6", "--csv"],
        ["bundled:minilm-l6", "--kinds", "attention", "--include", "layer.5"],
    ],
    ids=" ".join,
)
def test_fast_path_prints_what_the_slow_path_prints(runner, monkeypatch, args):
    fast = _invoke(runner, monkeypatch, args, fast=True)
    assert fast == _invoke(runner, monkeypatch, args, fast=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kinds", "conv,dense"], "layer kinds"),
        (["--kinds", ","], "layer kinds"),
        (["--include", "("], "regular expression for --include"),
    ],
)
def test_bad_filters_take_the_slow_path_and_its_error(runner, args, message):
    res = runner.invoke(app, ["layers", "bundled:efficientnet_lite0", *args])
    assert res.exit_code == 2 and message in res.stderr


def test_split_groups_and_other_specs_take_the_slow_path(runner, monkeypatch):
    def no_table(*a: object, **k: object) -> None:
        raise AssertionError("looked for a shipped table")

    monkeypatch.setattr(_layer_tables, "shipped_layer_table", no_table)
    args = ["bundled:efficientnet_lite0", "--split-groups", "--include", "blocks.0.0.conv_dw"]
    res = runner.invoke(app, ["layers", *args, "--json"], catch_exceptions=False)
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 32
    monkeypatch.undo()
    for spec in ("timm:tf_efficientnet_lite0", "bundled:../x", "bundled:nosuch"):
        assert _layer_tables.shipped_layer_table(spec, kinds=["conv"]) is None


_FRESH = """
import json, sys
from spectral_probe_cli.main import app
try:
    app(["layers", "bundled:efficientnet_lite0", "--json"], standalone_mode=False)
except SystemExit:
    pass
heavy = {"torch", "timm", "torchvision", "pandas", "transformers"}
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
"""


def test_fast_path_imports_no_torch_timm_torchvision_or_pandas():
    proc = subprocess.run(
        [sys.executable, "-c", _FRESH], check=True, capture_output=True, text=True, timeout=120
    )
    *table, heavy = proc.stdout.strip().splitlines()
    assert json.loads(heavy) == []
    assert [row["name"] for row in json.loads("\n".join(table))][-1] == "classifier"
