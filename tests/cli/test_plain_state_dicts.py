"""A newcomer's first weight commands: two plain state-dict files, no sidecar, no --arch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app
from torch import nn
from typer.testing import CliRunner

NOTE = "pass --arch SPEC for the real architecture"


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3), nn.Flatten(),
        nn.Linear(16, 4),
    )  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("plain")
    torch.save(_net(0).state_dict(), root / "a.pt")
    save_file(_net(1).state_dict(), root / "b.safetensors")
    return str(root / "a.pt"), str(root / "b.safetensors")


def _notes(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if NOTE in line]


def test_compare_weights_without_arch(runner: CliRunner, files: tuple[str, str]) -> None:
    res = runner.invoke(app, ["compare-weights", *files, "--json", "-q"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [r["layer"] for r in out["layers"]] == ["0", "3", "5"]
    assert [r["kind"] for r in out["layers"]] == ["conv", "conv", "linear"]
    assert out["meta"]["inferred_arch"]["models"] == ["model_a", "model_b"]
    notes = _notes(res.stderr)
    assert len(notes) == 1 and "a.pt and " in notes[0] and "groups unknown" in notes[0]


def test_layers_and_esd_without_arch(runner: CliRunner, files: tuple[str, str]) -> None:
    res = runner.invoke(app, ["layers", files[0], "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [(r["name"], r["kind"], r["shape"]) for r in rows] == [
        ("0", "conv", "8x3x3x3"),
        ("3", "conv", "16x8x3x3"),
        ("5", "linear", "4x16"),
    ]
    assert len(_notes(res.stderr)) == 1
    res = runner.invoke(app, ["layers", files[1], "--esd", "--json", "-q"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["meta"]["inferred_arch"]["models"] == ["model"]


def test_forward_commands_still_need_arch(runner: CliRunner, files: tuple[str, str]) -> None:
    res = runner.invoke(
        app,
        ["feature-spectrum", files[0], "--data", "digits", "--max-batches", "1", "--device", "cpu"],
    )
    assert "does not name its architecture" in one_line_error(res)
    assert "pass --arch" in res.output and not _notes(res.stderr)


def test_arch_still_wins(runner: CliRunner, tmp_path: Path) -> None:
    torch.save(_net(0).state_dict(), tmp_path / "a.pt")
    res = runner.invoke(app, ["layers", str(tmp_path / "a.pt"), "--arch", "torchvision:resnet18"])
    assert "does not fit architecture torchvision:resnet18" in one_line_error(res)


def test_modules_of_a_plain_file_are_its_tensor_prefixes(
    runner: CliRunner, files: tuple[str, str]
) -> None:
    res = runner.invoke(app, ["layers", files[0], "--modules", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [(r["name"], r["type"], r["params"]) for r in rows] == [
        ("0", "Conv2d", 8 * 3 * 9 + 8),
        ("1", "", 4 * 8 + 1),  # BatchNorm: weight, bias, running mean and var, batch count
        ("3", "Conv2d", 16 * 8 * 9 + 16),
        ("5", "Linear", 4 * 16 + 4),
    ]
    assert all(r["leaf"] for r in rows)


def test_split_groups_on_a_plain_file_is_one_line(
    runner: CliRunner, files: tuple[str, str]
) -> None:
    for args in (["layers", files[0]], ["compare-weights", *files, "-q"]):
        res = runner.invoke(app, [*args, "--split-groups"])
        assert res.exit_code == 2
        assert "expected --split-groups only for models built from a spec" in one_line_error(res)


def test_a_spec_against_a_plain_file(runner: CliRunner, tmp_path: Path) -> None:
    """The spec's side is built and read through its state dict, the file as tensors; the
    note names the file only."""
    from spectral_probe.models import load_model

    torch.save(load_model("mlp:12-6-3").model.state_dict(), tmp_path / "tuned.pt")
    res = runner.invoke(
        app, ["compare-weights", "mlp:12-6-3", str(tmp_path / "tuned.pt"), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert [r["layer"] for r in out["layers"]] == ["body.0", "fc"]
    assert out["meta"]["inferred_arch"]["models"] == ["model_b"]
    notes = _notes(res.stderr)
    assert len(notes) == 1 and notes[0].startswith(f"note: {tmp_path / 'tuned.pt'}:")
