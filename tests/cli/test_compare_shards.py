"""compare-weights --shards/--executor: the same files as one process, bad uses one line."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app
from typer.testing import CliRunner

from ..sources.conftest import tiny_llama


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from peft import LoraConfig, get_peft_model

    root = tmp_path_factory.mktemp("shards")
    tiny_llama().save_pretrained(root / "base", max_shard_size="20KB")
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(tiny_llama(), lora).save_pretrained(root / "adapter")
    return {p.name: p for p in root.iterdir()}


def test_inline_shards_write_what_one_process_writes(
    runner: CliRunner, dirs: dict[str, Path], tmp_path: Path
) -> None:
    common = [str(dirs["base"]), str(dirs["adapter"]), "-q", "--no-figures", "--device", "cpu"]
    one = runner.invoke(app, ["compare-weights", *common, "--out", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    sharded = runner.invoke(
        app,
        [
            "compare-weights",
            *common,
            "--out",
            str(tmp_path / "three"),
            "--shards",
            "3",
            "--executor",
            "inline",
        ],
    )
    assert sharded.exit_code == 0, sharded.output
    for name in ("summary.csv", "angles.csv", "update.csv", "intruders.csv"):
        a, b = pd.read_csv(tmp_path / "one" / name), pd.read_csv(tmp_path / "three" / name)
        pd.testing.assert_frame_equal(
            a.drop(columns="seconds", errors="ignore"), b.drop(columns="seconds", errors="ignore")
        )
    assert not (tmp_path / ".three.layers").exists()  # the store goes once the results are written


def test_shards_of_built_models_or_without_count_are_one_line(
    runner: CliRunner, dirs: dict[str, Path], tmp_path: Path
) -> None:
    line = one_line_error(
        runner.invoke(
            app,
            ["compare-weights", "torchvision:resnet18", "torchvision:resnet18", "--shards", "2"],
        )
    )
    assert "expected weight files or directories for --shards" in line
    line = one_line_error(
        runner.invoke(
            app,
            [
                "compare-weights",
                str(dirs["base"]),
                str(dirs["base"]),
                "--executor",
                "slurm",
                "--shards",
                "2",
            ],
        )
    )
    assert "expected a store folder the SLURM jobs can write (--out)" in line
    line = one_line_error(
        runner.invoke(
            app, ["compare-weights", str(dirs["base"]), str(dirs["base"]), "--shards", "0"]
        )
    )
    assert "expected --shards >= 1, found 0" in line


def test_without_out_the_store_is_temporary(runner: CliRunner, dirs: dict[str, Path]) -> None:
    import json

    common = [
        "compare-weights",
        str(dirs["base"]),
        str(dirs["adapter"]),
        "--json",
        "--device",
        "cpu",
    ]
    one = runner.invoke(app, common)
    sharded = runner.invoke(app, [*common, "--shards", "2", "--executor", "inline"])
    assert one.exit_code == 0 and sharded.exit_code == 0, sharded.output
    a, b = json.loads(one.stdout)["layers"], json.loads(sharded.stdout)["layers"]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(a) == strip(b)
