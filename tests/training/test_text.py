"""GLUE fine-tuning: TSV parsing per task, the tokenising collate, the glue preset, and a short
MiniLM fine-tune on a generated GLUE-format fixture (the classifier: models/test_text_classifier)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _fixtures.datasets import glue_label_values, make_glue_task

from spectral_probe.data import load_dataset
from spectral_probe.errors import ConfigError, DataError
from spectral_probe.training import (
    FinetuneConfig,
    TextClassificationTask,
    TextClassifier,
    TokenizeCollate,
    finetune,
)
from spectral_probe.training.engine import Trainer
from spectral_probe.training.optim import build_optimizer
from spectral_probe.training.text import binary_f1

transformers = pytest.importorskip("transformers")

TASKS = {"sst2": 1, "mrpc": 2, "qnli": 2, "mnli": 2}  # segments per example


@pytest.fixture(scope="module")
def minilm():
    from spectral_probe.models import load_model

    return load_model("bundled:minilm-l6")


def _tiny_bert(pooler_bias: float = 0.0):
    config = transformers.BertConfig(
        vocab_size=60,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    with torch.no_grad():
        model.pooler.dense.bias.fill_(pooler_bias)
    return model


@pytest.mark.parametrize("task", sorted(TASKS))
def test_glue_tsv_parsing_per_task(tmp_path, task):
    root = make_glue_task(tmp_path, task, n=7, n_dev=5)
    train, dev = (
        load_dataset(f"glue-{task}:{root}", "train"),
        load_dataset(f"glue-{task}:{root}", "test"),
    )
    assert (len(train), len(dev), dev.split, train.kind) == (7, 5, "dev", "text")
    values = glue_label_values(task)
    assert train.targets == [i % len(values) for i in range(7)]
    assert all(
        len(train[i][0]) == TASKS[task] and all(isinstance(s, str) and s for s in train[i][0])
        for i in range(7)
    )
    assert len(train.classes) == len(values)


def test_glue_bad_columns_and_labels_are_one_line_errors(tmp_path):
    root = make_glue_task(tmp_path, "sst2", n=4)
    (root / "train.tsv").write_text("text\tlabel\nfine\t1\n")
    with pytest.raises(
        DataError, match=r"expected columns \['sentence', 'label'\].*missing \['sentence'\]"
    ):
        load_dataset(f"glue-sst2:{root}", "train")
    (root / "train.tsv").write_text("sentence\tlabel\nfine\t1\nbad\t7\n")
    with pytest.raises(DataError, match=r"expected a label in \['0', '1'\].*line 3\), found '7'"):
        load_dataset(f"glue-sst2:{root}", "train")


@pytest.mark.parametrize("task", ["sst2", "mrpc"])
def test_collate_tokenises_with_dynamic_padding_and_truncation(tmp_path, minilm, task):
    ds = load_dataset(f"glue-{task}:{make_glue_task(tmp_path, task, n=6)}", "train")
    items = [ds[i] for i in range(4)]
    inputs, labels = TokenizeCollate(minilm.tokenizer, max_length=12)(items)
    assert labels.tolist() == [ds.targets[i] for i in range(4)]
    mask = inputs["attention_mask"]
    assert mask.shape[1] <= 12 and mask.shape[1] == int(
        mask.sum(1).max()
    )  # padded to the longest only
    full, _ = TokenizeCollate(minilm.tokenizer, max_length=128)(items)
    assert (
        full["input_ids"].shape[1] > 12
    )  # the fixture's sentences are longer: truncation happened
    pairs = bool((inputs["token_type_ids"] == 1).any())
    assert pairs == (TASKS[task] == 2)


def test_binary_f1_matches_scikit_learn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    for _ in range(20):
        y, p = rng.integers(0, 2, 50), rng.integers(0, 2, 50)
        conf = torch.zeros(2, 2, dtype=torch.float64)
        for a, b in zip(y, p):
            conf[a, b] += 1
        assert binary_f1(conf) == pytest.approx(f1_score(y, p))


def test_glue_preset_and_no_decay_groups(tmp_path):
    cfg = FinetuneConfig(
        model="bundled:minilm-l6", data="glue-sst2:x", task="text-classification", preset="glue"
    )
    r = cfg.resolve()
    assert (r.optimizer, r.lr, r.head_lr_ratio, r.batch_size, r.epochs, r.iterations) == (
        "adamw",
        2e-5,
        1.0,
        32,
        3,
        None,
    )
    assert (r.schedule, r.warmup, r.weight_decay, r.momentum) == ("linear", 0.1, 0.01, 0.9)
    assert cfg.with_overrides(iterations=20).resolve().epochs is None  # a config's own length wins
    with pytest.raises(ConfigError, match="fraction in"):
        cfg.with_overrides(warmup=1.5).resolve()
    tr = Trainer(r, tmp_path / "x")
    tr.total = 50
    assert tr.lr_factor(0) == pytest.approx(1 / 5) and tr.lr_factor(5) == pytest.approx(1.0)
    assert tr.lr_factor(49) == pytest.approx(1 - 44 / 45)
    model = TextClassifier(_tiny_bert(), 2)
    groups = TextClassificationTask().param_groups(
        model, [{"params": list(model.parameters()), "head": False}]
    )
    opt = build_optimizer(r, groups)
    decay = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    for name, p in model.named_parameters():
        assert decay[id(p)] == (0.01 if p.ndim >= 2 else 0.0), name


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory, minilm):
    del minilm  # loaded once for the module
    root = make_glue_task(tmp_path_factory.mktemp("glue"), "sst2", n=64, n_dev=16)
    cfg = FinetuneConfig(
        model="bundled:minilm-l6",
        data=f"glue-sst2:{root}",
        task="text-classification",
        preset="glue",
        method="bss",
        lr=1e-4,
        batch_size=8,
        iterations=16,
        log_every=4,
        task_options={"max_length": 32},
    )
    out = tmp_path_factory.mktemp("runs") / cfg.run_id
    return finetune(cfg, out)


def test_short_minilm_fine_tune_lowers_the_loss(sst2_run):
    m = sst2_run.metrics
    assert sst2_run.status == "finished" and list(m["iteration"]) == [4, 8, 12, 16]
    assert m["loss_task"].iloc[-1] < 0.7 * m["loss_task"].iloc[0]
    assert (m["loss_bss"] > 0).all() and (m["tokens_per_s"] > 0).all()
    assert (
        len(sst2_run.spectra.query("iteration == 16")) == 8
    )  # b = 8 singular values of the 8 x 384 F
    test = sst2_run.final["evals"]["test"]
    assert test["n"] == 16 and "f1" not in test  # SST-2 reports accuracy only


def test_run_directory_rebuilds_the_classifier(sst2_run):
    meta = json.loads((sst2_run.run_dir / "config.json").read_text())
    assert meta["task"] == "text-classification" and meta["data"]["pool"] == "cls"
    assert meta["data"]["test_split"] == "dev" and meta["config"]["task_options"] == {
        "max_length": 32
    }
    side = json.loads((sst2_run.run_dir / "model.json").read_text())
    assert (side["base"], side["head"], side["modality"]) == (
        "textcls:cls:bundled:minilm-l6",
        "classifier",
        "text",
    )
    loaded = sst2_run.load_model()
    assert isinstance(loaded.model, TextClassifier) and loaded.tokenizer is not None
    batch, _ = TokenizeCollate(loaded.tokenizer, 32)([(("a fine film",), 1), (("dull",), 0)])
    again = sst2_run.load_model().model
    torch.testing.assert_close(loaded.model(**batch), again(**batch))


def test_text_task_refuses_bad_inputs(tmp_path):
    root = make_glue_task(tmp_path, "sst2", n=8)
    nodir = tmp_path / "no_tokenizer"
    _tiny_bert().save_pretrained(nodir)
    base = dict(
        data=f"glue-sst2:{root}",
        task="text-classification",
        preset="glue",
        iterations=2,
        batch_size=4,
    )
    with pytest.raises(ConfigError, match="expected a tokenizer in the model directory of hf:"):
        finetune(FinetuneConfig(model=f"hf:{nodir}", **base), tmp_path / "r1")
    with pytest.raises(ConfigError, match="expected a text model"):
        finetune(FinetuneConfig(model="mlp:784-10", **base), tmp_path / "r2")
    with pytest.raises(ConfigError, match="expected task options of text-classification"):
        finetune(
            FinetuneConfig(model="bundled:minilm-l6", task_options={"maxlen": 3}, **base),
            tmp_path / "r3",
        )
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


@pytest.mark.gpu
def test_minilm_bf16_fine_tune_on_cuda(tmp_path):
    root = make_glue_task(tmp_path, "mrpc", n=64, n_dev=16)
    cfg = FinetuneConfig(
        model="bundled:minilm-l6",
        data=f"glue-mrpc:{root}",
        task="text-classification",
        preset="glue",
        method="bss",
        lr=1e-4,
        batch_size=16,
        iterations=20,
        log_every=5,
        device="cuda",
        amp="bf16",
        task_options={"max_length": 32},
    )
    run = finetune(cfg, tmp_path / "r")
    m = run.metrics
    assert run.status == "finished" and m["loss"].notna().all() and m["sv_min"].notna().all()
    assert (
        m["loss_task"].iloc[-1] < m["loss_task"].iloc[0]
        and run.final["timings"]["tokens_per_s"] > 0
    )
    assert "f1" in run.final["evals"]["test"] and run.meta["amp"] == "bfloat16"
    loaded = run.load_model()  # the checkpoint loads on the CPU
    assert next(loaded.model.parameters()).device.type == "cpu"
