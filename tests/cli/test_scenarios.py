"""``spectral-probe finetune`` scenarios: GLUE (picked by the data spec) and permuted (task A, then B).

The GLUE run directory is read back by ``compare-weights`` (MiniLM's q/k/v, attention output and
FFN matrices) and ``feature-spectrum`` (the classifier's input, the [CLS] feature); bad inputs
end in one line and exit status 2.
"""

from __future__ import annotations

import json

import pytest
from _fixtures.cli import one_line_error
from _fixtures.datasets import make_glue_task, make_mnist
from spectral_probe_cli.main import app


def _run(runner, args):
    return runner.invoke(app, args)


@pytest.fixture(scope="module")
def mrpc(tmp_path_factory):
    return make_glue_task(tmp_path_factory.mktemp("glue"), "mrpc", n=32, n_dev=8)


@pytest.fixture(scope="module")
def glue_run(runner, tmp_path_factory, mrpc):
    out = tmp_path_factory.mktemp("runs")
    res = _run(
        runner,
        [
            "finetune",
            "--model",
            "bundled:minilm-l6",
            "--data",
            f"glue-mrpc:{mrpc}",
            "--method",
            "bss",
            "--iterations",
            "4",
            "--batch-size",
            "8",
            "--lr",
            "5e-5",
            "--log-every",
            "2",
            "--out",
            str(out),
            "-q",
            "--task-option",
            "max_length=64",
            "--task-option",
            "pool=cls",
        ],
    )
    assert res.exit_code == 0, res.output
    (run,) = out.iterdir()
    return res, run


def test_glue_scenario_from_the_data_spec(glue_run):
    res, run = glue_run
    assert run.name.startswith("glue-mrpc-bss-100pct-s0-")
    assert "test top-1:" in res.output and ", F1 " in res.output and "on 8 examples" in res.output
    meta = json.loads((run / "config.json").read_text())
    cfg = meta["config"]
    assert (meta["task"], cfg["preset"], cfg["optimizer"], cfg["method"]) == (
        "text-classification",
        "glue",
        "adamw",
        "bss",
    )
    assert (
        cfg["task_options"] == {"max_length": 64, "pool": "cls"}
        and meta["data"]["max_length"] == 64
    )
    final = json.loads((run / "final.json").read_text())
    assert (
        set(final["evals"]["test"]) >= {"accuracy", "f1", "loss", "n"}
        and final["timings"]["tokens_per_s"] > 0
    )


def test_sweep_table4_of_the_glue_run(runner, glue_run, tmp_path):
    _, run = glue_run
    final = json.loads((run / "final.json").read_text())
    res = _run(runner, ["sweep-table", str(run.parent), "--table4", "--out", str(tmp_path / "t4")])
    assert res.exit_code == 0, res.output
    acc = f"{100 * final['evals']['test']['accuracy']:.2f} (n=1)"
    assert "| model | method | MNLI-m | QNLI | MRPC | SST-2 | avg | paper |" in res.stdout
    assert (
        f"| bundled:minilm-l6 | bss |  |  | {acc} |  | " in res.stdout
        and "| BERT + BSS | 85.0 | 89.6 | 87.9 | 93.2 | 87.9 |" in res.stdout
    )
    assert sorted(p.name for p in (tmp_path / "t4").iterdir()) == [
        "cells.csv",
        "runs.csv",
        "table.md",
    ]
    cells = json.loads(_run(runner, ["sweep-table", str(run.parent), "--table4", "--json"]).stdout)[
        "cells"
    ]
    assert cells[0]["glue_task"] == "MRPC" and cells[0]["f1_mean"] == pytest.approx(
        100 * final["evals"]["test"]["f1"]
    )
    err = one_line_error(_run(runner, ["sweep-table", str(run.parent), "--table3", "--table4"]))
    assert err.endswith("expected one of --table3 and --table4, found both")


def test_compare_weights_pairs_minilm_matrices(runner, glue_run):
    _, run = glue_run
    res = _run(
        runner,
        [
            "compare-weights",
            "bundled:minilm-l6",
            str(run / "model.safetensors"),
            "--json",
            "-q",
            "--include",
            r"^encoder\.layer\.0\.",
        ],
    )
    assert res.exit_code == 0, res.output
    layers = {layer["layer"]: layer for layer in json.loads(res.stdout)["layers"]}
    prefix = "encoder.layer.0."
    for name in (
        "attention.self.query",
        "attention.self.key",
        "attention.self.value",
        "attention.output.dense",
    ):
        assert layers[prefix + name]["kind"] == "attention"
    for name in ("intermediate.dense", "output.dense"):
        assert layers[prefix + name]["kind"] == "linear"
    assert all(
        0.9 < layer["cos"][0] <= 1.0 + 1e-6 for layer in layers.values()
    )  # 4 small steps: still aligned


def test_feature_spectrum_reads_the_cls_feature(runner, glue_run, mrpc):
    _, run = glue_run
    res = _run(
        runner,
        [
            "feature-spectrum",
            str(run / "model.safetensors"),
            "--data",
            f"glue-mrpc:{mrpc}",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--json",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    entry = json.loads(res.stdout)["spectra"][0]
    assert (
        entry["d"] == 384
        and entry["site"] == "input of the classifier 'classifier'"
        and entry["n_batches"] == 2
    )


def test_permuted_scenario_prints_both_tasks_and_table3(runner, tmp_path):
    args = [
        "finetune",
        "--scenario",
        "permuted",
        "--data",
        "digits",
        "--model",
        "mlp:64-64-64-10",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--hp",
        "ewc.lam=10",
        "--out",
        str(tmp_path),
        "-q",
    ]
    res = _run(runner, [*args, "--method", "ewc+bss"])
    assert res.exit_code == 0, res.output
    for line in ("task A top-1:", "(after task A alone:", "task B top-1:", "average:"):
        assert line in res.output
    payload = json.loads(_run(runner, [*args, "--method", "ewc", "--json"]).stdout)
    assert payload["status"] == "finished" and payload["average"] == pytest.approx(
        (payload["task_a"] + payload["task_b"]) / 2
    )
    assert (
        len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3
    )  # one task-A run shared by both methods
    table = _run(runner, ["sweep-table", str(tmp_path), "--table3"])
    assert (
        table.exit_code == 0 and "| digits | ewc | 1 |" in table.stdout and "97.42" in table.stdout
    )


def test_permuted_scenario_runs_on_mnist(runner, tmp_path):
    """MNIST's IDX files (torchvision's layout here) with the scenario's default 784-input MLP."""
    root = make_mnist(tmp_path / "data", n_train=30, n_test=20, layout="torchvision")
    res = _run(
        runner,
        [
            "finetune",
            "--scenario",
            "permuted",
            "--data",
            f"mnist:{root}",
            "--iterations",
            "3",
            "--batch-size",
            "10",
            "--method",
            "ewc+bss",
            "--out",
            str(tmp_path / "runs"),
            "--json",
            "-q",
            "--task-option",
            "permutation_seed=7",
        ],
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["status"] == "finished" and payload["task_b_run"].split("/")[-1].startswith(
        "mnist-ewc+bss-"
    )
    meta = json.loads(
        (tmp_path / "runs" / payload["task_b_run"].split("/")[-1] / "config.json").read_text()
    )
    assert meta["config"]["model"].endswith("model.safetensors") and meta["data"]["pixels"] == 784
    assert (
        meta["data"]["classes"] == [str(d) for d in range(10)] and meta["data"]["test_size"] == 20
    )
    assert (
        meta["config"]["task_options"] == {"permutation_seed": 7, "phase": "B"}
        and meta["data"]["permutation_seed"] == 7
    )


def test_task_option_errors_are_one_line(runner, tmp_path, mrpc):
    out = tmp_path / "runs"
    glue = ["finetune", "--data", f"glue-mrpc:{mrpc}", "--iterations", "2", "--out", str(out)]
    err = one_line_error(
        _run(runner, [*glue, "--task-option", "max_length=64", "--task-option", "maxlen=3"])
    )
    assert err.endswith(
        "expected task options of text-classification from ['max_length', 'pool', 'dropout'], found ['maxlen']"
    )
    err = one_line_error(_run(runner, [*glue, "--task-option", "max_length"]))
    assert err.endswith(
        "expected a task option as KEY=VALUE (e.g. max_length=64), found 'max_length'"
    )
    image = ["finetune", "--data", "digits", "--iterations", "2", "--out", str(out)]
    err = one_line_error(_run(runner, [*image, "--task-option", "pool=mean"]))
    assert err.endswith(
        "expected task options of image-classification from ['interpolation', 'holdout'], found ['pool']"
    )
    err = one_line_error(_run(runner, [*image, "--task-option", "interpolation=lanczos"]))
    assert err.endswith(
        "expected an interpolation in bilinear, bicubic, nearest, found 'lanczos' (or 'model') "
        "for task option interpolation"
    )
    permuted = [
        "finetune",
        "--scenario",
        "permuted",
        "--data",
        "digits",
        "--model",
        "mlp:64-400-400-10",
        "--iterations",
        "2",
        "--out",
        str(out),
    ]
    err = one_line_error(_run(runner, [*permuted, "--task-option", "pool=mean"]))
    assert err.endswith(
        "expected task options of permuted from ['phase', 'permutation_seed'], found ['pool']"
    )
    err = one_line_error(_run(runner, [*permuted, "--task-option", "permutation_seed=-1"]))
    assert "expected task option permutation_seed to be an integer >= 0, found -1" in err
    assert not out.exists()


def test_bad_glue_inputs_are_one_line_errors(runner, tmp_path):
    from transformers import BertConfig, BertModel

    root = make_glue_task(tmp_path / "data", "sst2", n=8)
    common = [
        "finetune",
        "--data",
        f"glue-sst2:{root}",
        "--iterations",
        "2",
        "--batch-size",
        "4",
        "--out",
        str(tmp_path / "runs"),
    ]
    (root / "train.tsv").write_text("text\tlabel\nfine\t1\n")
    assert "missing ['sentence']" in one_line_error(_run(runner, common))
    (root / "train.tsv").write_text("sentence\tlabel\nfine\t1\nbad\t2\n")
    assert "found '2'" in one_line_error(_run(runner, common))
    make_glue_task(tmp_path / "data", "sst2", n=8)  # a good file again
    nodir = tmp_path / "bare-model"
    BertModel(
        BertConfig(
            vocab_size=60,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    ).save_pretrained(nodir)
    err = one_line_error(_run(runner, [*common, "--model", f"hf:{nodir}"]))
    assert "expected a tokenizer in the model directory" in err
    err = one_line_error(
        _run(runner, [*common[:3], "--scenario", "permuted", "--out", str(tmp_path / "runs")])
    )
    assert "expected an in-memory image dataset" in err
    assert not (tmp_path / "runs").exists()
