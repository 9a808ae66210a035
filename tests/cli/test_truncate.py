"""``truncate`` (LASER) round-trips through transformers; untouched bytes stay, nothing half-written."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from _fixtures.cli import one_line_error
from _fixtures.llama import save_tiny_llama
from safetensors import safe_open
from spectral_probe_cli.main import app

PATTERN = r"layers\.(1|3)\.mlp\.down_proj|layers\.2\.self_attn\.q_proj"


def _tokenizer(path):
    """A tiny word-level fast tokenizer, written by transformers' save_pretrained."""
    import transformers as tr
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", "the", "cat", "sat"])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = tr.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    fast.save_pretrained(path)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("laser") / "llama"
    save_tiny_llama(path, dtype=torch.float32, shard="60KB")
    _tokenizer(path)
    return path


def _tensors(path):
    index = json.loads((path / "model.safetensors.index.json").read_text())["weight_map"]
    out = {}
    for name, shard in index.items():
        with safe_open(str(path / shard), framework="pt") as fh:
            out[name] = fh.get_tensor(name)
    return index, out


def _numpy_truncation(w: np.ndarray, keep: float) -> np.ndarray:
    k = int(np.ceil(round(keep * min(w.shape), 9)))
    u, s, vt = np.linalg.svd(w.astype(np.float64), full_matrices=False)
    return (u[:, :k] * s[:k]) @ vt[:k]


def test_truncate_round_trips_through_transformers(runner, model_dir, tmp_path):
    import transformers as tr

    out = tmp_path / "laser"
    args = [
        "truncate",
        str(model_dir),
        "--layers",
        PATTERN,
        "--keep",
        "0.25",
        "-q",
        "--out",
        str(out),
    ]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "model.layers.3.mlp.down_proj.weight" in res.stdout
    # same files: shards, index, config, tokenizer, plus laser.json
    before = {p.name for p in model_dir.iterdir()}
    after = {p.name for p in out.iterdir()}
    assert after == before | {"laser.json"}
    assert len([n for n in before if n.endswith(".safetensors")]) > 1  # really sharded
    for name in before - {"model.safetensors.index.json"}:
        if not name.endswith(".safetensors"):
            assert (out / name).read_bytes() == (model_dir / name).read_bytes(), name
    index_in, old = _tensors(model_dir)
    index_out, new = _tensors(out)
    assert index_out == index_in
    total = json.loads((out / "model.safetensors.index.json").read_text())["metadata"]["total_size"]
    assert total == sum(t.numel() * t.element_size() for t in new.values())
    chosen = {n for n in old if re.search(PATTERN, n)}
    assert chosen == {
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.3.mlp.down_proj.weight",
        "model.layers.2.self_attn.q_proj.weight",
    }
    for name, tensor in old.items():
        if name in chosen:
            ref = _numpy_truncation(tensor.numpy(), 0.25)
            got = new[name].double().numpy()
            assert np.abs(got - ref).max() <= 1e-6 * np.abs(ref).max(), name
            k = int(np.ceil(0.25 * min(tensor.shape)))
            assert np.linalg.matrix_rank(got, tol=1e-4 * np.linalg.norm(got, 2)) == k
            assert new[name].dtype == tensor.dtype
        else:  # byte-identical
            assert new[name].dtype == tensor.dtype
            assert torch.equal(new[name].view(torch.uint8), tensor.view(torch.uint8)), name
    laser = json.loads((out / "laser.json").read_text())
    assert set(laser["replaced"]) == chosen and laser["meta"]["keep"] == 0.25
    # transformers loads it, with every weight, and the loaded weights are the written ones
    model = tr.AutoModelForCausalLM.from_pretrained(out)
    params = dict(model.named_parameters())
    for name in chosen:
        assert torch.equal(params[name].detach(), new[name])
    tok = tr.AutoTokenizer.from_pretrained(out)
    assert tok("the cat sat")["input_ids"] == [3, 4, 5]


def test_single_file_bf16(runner, tmp_path):
    import transformers as tr

    src = tmp_path / "one"
    save_tiny_llama(src, dtype=torch.bfloat16, shard=None)
    out = tmp_path / "out"
    out.mkdir()  # an empty folder is accepted
    res = runner.invoke(
        app,
        ["truncate", str(src), "--layers", "mlp", "--keep", "1", "-q", "--out", str(out), "--json"],
    )
    assert res.exit_code == 0, res.output
    replaced = json.loads(res.stdout)["replaced"]
    assert len(replaced) == 12 and all(v["rank"] == v["full_rank"] for v in replaced.values())
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "generation_config.json", "laser.json", "model.safetensors",
    ]  # fmt: skip
    model = tr.AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    with safe_open(str(src / "model.safetensors"), framework="pt") as fh:
        w = fh.get_tensor("model.layers.0.mlp.up_proj.weight")
    # keep = 1: the full-rank reconstruction, back in bf16 (within one bf16 rounding)
    got = model.model.layers[0].mlp.up_proj.weight.detach()
    assert torch.allclose(got.float(), w.float(), rtol=2**-7, atol=1e-6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--layers", "mlp", "--keep", "0"], "expected --keep in (0, 1], found 0.0"),
        (["--layers", "mlp", "--keep", "1.5"], "expected --keep in (0, 1], found 1.5"),
        (["--layers", "no_such", "--keep", "0.5"], "expected --layers 'no_such' to name 2-D"),
        (["--layers", "norm", "--keep", "0.5"], "to name 2-D weights"),
        (["--layers", "(", "--keep", "0.5"], "valid regular expression"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(runner, model_dir, tmp_path, extra, message):
    out = tmp_path / "never"
    res = runner.invoke(app, ["truncate", str(model_dir), "-q", "--out", str(out), *extra])
    assert message in one_line_error(res)
    assert not list(tmp_path.iterdir())


def test_out_in_use_is_refused(runner, model_dir, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    args = ["truncate", str(model_dir), "--layers", "mlp", "--keep", "0.5", "-q"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "busy")])
    assert "new or empty directory" in one_line_error(res)
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["keep.txt"]


def test_failure_midway_leaves_nothing(runner, model_dir, tmp_path, monkeypatch):
    from spectral_probe.analysis import truncate as mod

    calls = []

    def failing(w, k):
        calls.append(k)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return torch.zeros_like(w)

    monkeypatch.setattr(mod, "low_rank", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        mod.truncate_model(model_dir, tmp_path / "out", layers="mlp", keep=0.5)
    assert len(calls) == 2
    assert not list(tmp_path.iterdir())


def _loss_perplexity(model, ids) -> float:
    with torch.inference_mode():
        return float(torch.exp(model(ids, labels=ids).loss))


def test_laser_sweep_inline_resumes_and_matches_a_direct_evaluation(runner, model_dir, tmp_path):
    import transformers as tr

    text = tmp_path / "eval.txt"
    text.write_text("the cat sat " * 40)
    out = tmp_path / "runs"
    args = ["laser-sweep", str(model_dir), "--eval", str(text), "--blocks", "0-1", "--keep", "0.5"]
    args += ["--executor", "inline", "--out", str(out), "-q", "--json"]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    cells = json.loads(res.stdout)
    assert [(c["layer"], c["type"], c["keep"]) for c in cells] == [
        (None, None, 1.0), (0, "mlp.down_proj", 0.5), (1, "mlp.down_proj", 0.5),
    ]  # fmt: skip
    assert {c["status"] for c in cells} == {"finished"}
    # the same numbers from the model loaded and truncated here (NumPy SVD), one window
    model = tr.AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tr.AutoTokenizer.from_pretrained(model_dir)("the cat sat " * 40, return_tensors="pt")
    ids = ids["input_ids"]
    assert cells[0]["value"] == pytest.approx(_loss_perplexity(model, ids), rel=1e-6)
    w = model.model.layers[1].mlp.down_proj.weight
    with torch.no_grad():
        w.copy_(torch.from_numpy(_numpy_truncation(w.numpy(), 0.5)))
    assert cells[2]["value"] == pytest.approx(_loss_perplexity(model, ids), rel=1e-5)
    assert cells[2]["value"] != pytest.approx(cells[0]["value"], rel=1e-6)
    assert not any((out / c["run_id"] / "model").exists() for c in cells)  # copies deleted
    final = json.loads((out / cells[1]["run_id"] / "final.json").read_text())
    assert final["cell"]["layer"] == 0 and final["metric_name"] == "perplexity"
    again = json.loads(runner.invoke(app, args, catch_exceptions=False).stdout)
    assert [c["status"] for c in again] == ["skipped"] * 3
    assert [c["value"] for c in again] == [c["value"] for c in cells]
    # the same search spelt as the issue asks: sweep laser --model M (the cells are found done)
    spelt = ["sweep", "laser", "--model", str(model_dir), *args[2:]]
    assert json.loads(runner.invoke(app, spelt, catch_exceptions=False).stdout) == again


def test_laser_sweep_eval_command_and_bad_input(runner, model_dir, tmp_path):
    import sys

    cmd = f"{sys.executable} -c \"import sys, os; print('n =', len(os.listdir(sys.argv[1])))\" {{model}}"
    args = [
        "laser-sweep",
        str(model_dir),
        "--blocks",
        "2",
        "--keep",
        "0.25",
        "--executor",
        "inline",
    ]
    res = runner.invoke(
        app, [*args, "--eval-command", cmd, "--out", str(tmp_path / "r"), "-q", "--json"]
    )
    assert res.exit_code == 0, res.output
    cells = json.loads(res.stdout)
    # the baseline sees the input directory; the truncated copy holds laser.json as well
    files = len(list(model_dir.iterdir()))
    assert [c["value"] for c in cells] == [files, files + 1]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "x")])
    assert "exactly one of --eval TEXT_FILE and --eval-command" in one_line_error(res)
    res = runner.invoke(
        app, [*args[:4], "--keep", "0", "--eval-command", cmd, "--out", str(tmp_path / "x")]
    )
    assert "expected --keep in (0, 1], found 0.0" in one_line_error(res)
    assert not (tmp_path / "x").exists()
