"""``select-layers`` end to end on a decoder written by transformers' ``save_pretrained``."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
import yaml
from _fixtures.cli import one_line_error
from _fixtures.llama import save_tiny_llama
from spectral_probe_cli.main import app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("sel") / "llama"
    save_tiny_llama(path, dtype=torch.bfloat16)
    return path


def _invoke(runner, args):
    return runner.invoke(app, args, catch_exceptions=False)


def test_outputs(runner, model_dir, tmp_path):
    out = tmp_path / "sel"
    res = _invoke(
        runner, ["select-layers", str(model_dir), "--top-percent", "50", "-q", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "mlp.down_proj" in res.stdout and "top 50% per type by snr" in res.stdout
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == {
        "snr.json", "scores.csv", "unfrozen_parameters.yaml", "peft_config.json",
        "results.json", "config.json", "figures/scores_by_depth.png",
    }  # fmt: skip
    snr = json.loads((out / "snr.json").read_text())
    assert snr["model.layers.2.mlp.down_proj"]["type"] == "mlp.down_proj"
    assert set(snr["lm_head"]) == {"snr", "type"}
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == len(snr) and scores["selected"].sum() > 0
    # axolotl reads the YAML: the selected modules of each type, the two embedding lines first
    unfrozen = yaml.safe_load((out / "unfrozen_parameters.yaml").read_text())["unfrozen_parameters"]
    assert unfrozen[:2] == ["^lm_head.weight$", "^model.embed_tokens.weight$"]
    assert sorted(unfrozen[2:]) == sorted(scores.loc[scores["selected"], "name"])
    down = scores[scores["type"] == "mlp.down_proj"]
    assert down["selected"].sum() == 2  # int(4 blocks * 50 / 100)
    top = down.sort_values("score", ascending=False)["name"].head(2)
    assert set(top) <= set(unfrozen)
    peft_config = json.loads((out / "peft_config.json").read_text())
    assert set(peft_config) >= {"target_modules", "layers_to_transform", "rank_pattern", "r"}
    assert json.loads((out / "results.json").read_text())["meta"]["score"] == "snr"


def test_other_score_json_and_no_embedding_lines(runner, model_dir, tmp_path):
    out = tmp_path / "gd"
    args = ["select-layers", str(model_dir), "--score", "gavish-donoho", "--top-percent", "25"]
    res = _invoke(
        runner, [*args, "--no-embeddings", "--no-figures", "-q", "--out", str(out), "--json"]
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["meta"]["score"] == "gavish-donoho"
    assert all(row["rows"] > 1 for row in payload["scores"])  # 1-D weights not scored
    text = (out / "unfrozen_parameters.yaml").read_text()
    assert "^lm_head" not in text and not (out / "figures").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--score", "svd"], "expected --score one of snr, mp, gavish-donoho"),
        (["--top-percent", "0"], r"expected --top-percent in (0, 100], found 0.0"),
        (["--top-percent", "101"], r"expected --top-percent in (0, 100], found 101.0"),
        (["--layers", "no_such_module"], "matching --layers 'no_such_module'"),
        (["--rank", "energy:0"], "energy:F with F in (0, 1]"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(runner, model_dir, tmp_path, extra, message):
    out = tmp_path / "never"
    res = runner.invoke(app, ["select-layers", str(model_dir), "-q", "--out", str(out), *extra])
    assert message in one_line_error(res)
    assert not out.exists()
    assert not list(tmp_path.iterdir())


def test_adapter_with_base_suggests_the_adapter_rank(runner, tmp_path):
    """A peft LoRA adapter (r = 4) merged into its base: the update's rank is 4."""
    peft = pytest.importorskip("peft")
    from _fixtures.llama import tiny_llama

    base_dir = tmp_path / "base"
    save_tiny_llama(base_dir, dtype=torch.float32)
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False
    )
    peft.get_peft_model(tiny_llama(), config).save_pretrained(tmp_path / "adapter")
    args = ["select-layers", str(tmp_path / "adapter"), "--base", str(base_dir), "-q"]
    res = _invoke(runner, [*args, "--layers", "q_proj|v_proj", "--json"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["scores"]
    assert len(rows) == 8 and {row["rank"] for row in rows} == {4}
    res = runner.invoke(app, ["select-layers", str(tmp_path / "adapter"), "-q"])
    assert "expected --base BASE for the peft adapter" in one_line_error(res)
