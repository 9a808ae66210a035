"""compare-weights and layers on what people fine-tune: transformers directories, adapters, wrapped state dicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app
from typer.testing import CliRunner

from ..sources.conftest import perturbed, tiny_llama


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("files")
    base = tiny_llama()
    base.save_pretrained(root / "base", max_shard_size="20KB")
    save_file(base.state_dict(), root / "base.safetensors")
    tuned = perturbed(tiny_llama())
    tuned.save_pretrained(root / "tuned")
    torch.save(torch.compile(tuned).state_dict(), root / "compiled.pt")
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    get_peft_model(tiny_llama(), lora).save_pretrained(root / "adapter")
    return {p.name: p for p in root.iterdir()}


def _run(runner: CliRunner, *args: str) -> object:
    return runner.invoke(app, list(args))


def test_directories_compared_without_hf_prefix(
    runner: CliRunner, dirs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "cw"
    res = runner.invoke(
        app,
        [
            "compare-weights",
            str(dirs["base"]),
            str(dirs["tuned"]),
            "--out",
            str(out),
            "-q",
            "--kinds",
            "linear,attention,embedding",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = pd.read_csv(out / "summary.csv")
    assert summary["layer"].iloc[0] == "embed_tokens" and summary["layer"].iloc[-1] == "lm_head"
    assert len(summary) == 16 and (summary["dtype_a"] == "float32").all()
    assert (out / "figures" / "angle_heatmap.png").is_file()
    assert not (tmp_path / ".cw.layers").exists()  # the per-layer store goes once results are in
    assert "Warning" not in res.stderr and "UNEXPECTED" not in res.output


def test_compiled_state_dict_pairs_with_plain_safetensors(
    runner: CliRunner, dirs: dict[str, Path]
) -> None:
    res = runner.invoke(
        app,
        [
            "compare-weights",
            str(dirs["base.safetensors"]),
            str(dirs["compiled.pt"]),
            "--json",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert len(out["layers"]) == 15 and out["skipped"] == []
    assert out["meta"]["inferred_arch"]["models"] == ["model_a", "model_b"]
    assert out["layers"][0]["layer"] == "layers.0.self_attn.q_proj"  # embeddings are opt-in


def test_adapter_directory_is_base_plus_adapter(runner: CliRunner, dirs: dict[str, Path]) -> None:
    res = runner.invoke(
        app,
        [
            "compare-weights",
            str(dirs["base"]),
            str(dirs["adapter"]),
            "--json",
            "-q",
            "--layers",
            "self_attn",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    ranks = {r["layer"]: r["lora_rank"] for r in out["layers"]}
    assert ranks["layers.0.self_attn.q_proj"] == 4 and ranks["layers.0.self_attn.k_proj"] is None
    assert {r["layer"] for r in out["update"]} == {
        f"layers.{i}.self_attn.{p}_proj" for i in (0, 1) for p in "qv"
    }
    res = runner.invoke(app, ["layers", str(dirs["adapter"]), "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert {(r["name"], r["shape"], r["rank"], r["scale"], r["layout"]) for r in rows} == {
        (f"layers.{i}.self_attn.{p}_proj", "32x32" if p == "q" else "16x32", 4, 2.0, "linear")
        for i in (0, 1)
        for p in "qv"
    }


def test_layers_lists_a_directory_in_depth_order_and_its_esd(
    runner: CliRunner, dirs: dict[str, Path]
) -> None:
    res = runner.invoke(
        app, ["layers", str(dirs["base"]), "--json", "--kinds", "linear,attention,embedding"]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["name"] for r in rows][:2] == ["embed_tokens", "layers.0.self_attn.q_proj"]
    assert rows[-1]["name"] == "lm_head" and rows[0]["kind"] == "embedding"
    res = runner.invoke(
        app, ["layers", str(dirs["base"]), "--esd", "--json", "-q", "--kinds", "linear"]
    )
    assert res.exit_code == 0, res.output
    assert [r["layer"] for r in json.loads(res.stdout)["layers"]][-1] == "lm_head"


def test_bad_inputs_are_one_line_exit_2_nothing_written(
    runner: CliRunner, dirs: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(dirs["base"], broken)
    shard = sorted(broken.glob("model-*.safetensors"))[1]
    shard.unlink()
    empty = tmp_path / "empty"
    empty.mkdir()
    nan = tmp_path / "nan"
    shutil.copytree(dirs["tuned"], nan)
    from safetensors.torch import load_file, save_file

    state = load_file(nan / "model.safetensors")
    state["model.layers.1.mlp.up_proj.weight"][0, :3] = float("inf")
    save_file(state, nan / "model.safetensors", metadata={"format": "pt"})
    torch.save({"state_dict": {"w": torch.ones(2, 2)}, "args": Path("x")}, tmp_path / "code.ckpt")
    cases = [
        (str(broken), f"names shard {shard.name}, which is missing"),
        (str(empty), "expected model weights in"),
        (str(tmp_path / "code.ckpt"), "refusing to load"),
        (str(sorted(dirs["base"].glob("model-*.safetensors"))[0]), "pass the directory"),
        (str(nan), "found 3 NaN/Inf value(s) in layers.1.mlp.up_proj.weight"),
    ]
    for spec, message in cases:
        out = tmp_path / f"out-{Path(spec).name}"
        res = runner.invoke(
            app, ["compare-weights", str(dirs["base"]), spec, "-q", "--out", str(out)]
        )
        assert message in one_line_error(res), spec
        assert not out.exists() or not any(out.iterdir()), spec
    res = runner.invoke(
        app, ["compare-weights", str(dirs["base"]), str(nan), "-q", "--json", "--skip-nonfinite"]
    )
    assert res.exit_code == 0, res.output
    status = {r["layer"]: r["status"] for r in json.loads(res.stdout)["layers"]}
    assert (
        status["layers.1.mlp.up_proj"] == "nonfinite-b" and "1 layer(s) with NaN/Inf" in res.stderr
    )
