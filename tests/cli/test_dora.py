"""A DoRA adapter is refused in one line (exit 2, nothing written) by every weight command."""

from __future__ import annotations

from pathlib import Path

from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app
from typer.testing import CliRunner

from ..sources.conftest import tiny_llama


def test_dora_is_one_line_exit_2_nothing_written(runner: CliRunner, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    tiny_llama().save_pretrained(tmp_path / "base")
    dora = LoraConfig(r=2, target_modules=["q_proj"], use_dora=True)
    get_peft_model(tiny_llama(), dora).save_pretrained(tmp_path / "dora")
    out = tmp_path / "cw"
    compare = ["compare-weights", str(tmp_path / "base"), str(tmp_path / "dora"), "--out", str(out)]
    for args in (compare, ["layers", str(tmp_path / "dora")]):
        line = one_line_error(runner.invoke(app, args))
        assert "expected a LoRA adapter without DoRA" in line and "found use_dora = true" in line
    assert not out.exists() and not (tmp_path / ".cw.layers").exists()
