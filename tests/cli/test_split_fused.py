"""--split-fused on the command line: compare-weights and layers on a GPT-2 written by transformers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app
from typer.testing import CliRunner

from ..sources.conftest import perturbed, tiny_gpt2


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gpt2")
    tiny_gpt2().save_pretrained(root / "a")
    perturbed(tiny_gpt2()).save_pretrained(root / "b")
    return {p.name: p for p in root.iterdir()}


def test_compare_weights_splits_c_attn_only_when_asked(
    runner: CliRunner, gpt2: dict[str, Path]
) -> None:
    args = ["compare-weights", str(gpt2["a"]), str(gpt2["b"]), "--json", "--device", "cpu"]
    whole = runner.invoke(app, args)
    assert whole.exit_code == 0, whole.output
    names = [row["layer"] for row in json.loads(whole.stdout)["layers"]]
    assert "h.0.attn.c_attn" in names and "h.0.attn.c_attn:q" not in names
    split = runner.invoke(app, [*args, "--split-fused"])
    assert split.exit_code == 0, split.output
    rows = {row["layer"]: row for row in json.loads(split.stdout)["layers"]}
    assert "h.0.attn.c_attn" not in rows
    assert all(rows[f"h.1.attn.c_attn:{p}"]["rows"] == 32 for p in "qkv")


def test_layers_lists_the_parts_and_refuses_esd(runner: CliRunner, gpt2: dict[str, Path]) -> None:
    res = runner.invoke(app, ["layers", str(gpt2["a"]), "--split-fused", "--json"])
    assert res.exit_code == 0, res.output
    listed = {row["name"]: row["matrix"] for row in json.loads(res.stdout)}
    assert listed["h.0.attn.c_attn:k"] == "32x32" and "h.0.attn.c_attn" not in listed
    line = one_line_error(runner.invoke(app, ["layers", str(gpt2["a"]), "--split-fused", "--esd"]))
    assert "expected --split-fused without --esd" in line
