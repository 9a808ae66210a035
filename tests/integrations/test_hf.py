"""``BSSTrainer`` on the bundled MiniLM: the loss is the task loss plus eta times NumPy's tail."""

from __future__ import annotations

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from spectral_probe.errors import ConfigError  # noqa: E402
from spectral_probe.integrations.hf import BSSTrainer  # noqa: E402
from spectral_probe.models import load_model  # noqa: E402

SENTENCES = [
    f"{a} {b}"
    for a in ("a fine", "a dull", "a moving", "a badly made")
    for b in ("film", "story", "cast", "ending")
]  # 16 distinct: no duplicated rows in a batch


@pytest.fixture(scope="module")
def encoder():
    return load_model("bundled:minilm-l6")


def _classifier(encoder):
    cfg = transformers.BertConfig(
        **{
            **encoder.model.config.to_dict(),
            "num_labels": 2,
            "hidden_dropout_prob": 0.0,
            "attention_probs_dropout_prob": 0.0,
            "classifier_dropout": 0.0,
        }
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(cfg)
    model.bert.load_state_dict(encoder.model.state_dict(), strict=False)
    return model


def _dataset(encoder):
    enc = encoder.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    labels = torch.tensor([i % 2 for i in range(len(SENTENCES))])
    return [
        {
            "input_ids": enc["input_ids"][i],
            "attention_mask": enc["attention_mask"][i],
            "labels": labels[i],
        }
        for i in range(len(SENTENCES))
    ]


def _args(tmp_path, steps=3):
    return transformers.TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        seed=0,
        disable_tqdm=True,
    )


def _smallest_sq(f: torch.Tensor, k: int) -> float:
    return float(np.sort(np.linalg.svd(f.double().numpy(), compute_uv=False) ** 2)[:k].sum())


@pytest.mark.parametrize("features", ["cls", "pooled"])
def test_training_loss_is_task_loss_plus_eta_times_the_tail(encoder, tmp_path, features):
    model = _classifier(encoder)
    trainer = BSSTrainer(
        model=model,
        args=_args(tmp_path),
        train_dataset=_dataset(encoder),
        bss_eta=0.5,
        bss_k=2,
        bss_features=features,
    )
    batch = trainer.data_collator(_dataset(encoder)[:8])
    model.train()
    loss = trainer.compute_loss(model, dict(batch))
    with torch.no_grad():
        out = model(**batch, output_hidden_states=True)
        f = (
            out.hidden_states[-1][:, 0]
            if features == "cls"
            else model.bert(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).pooler_output
        )
    assert float(loss.detach()) == pytest.approx(
        float(out.loss) + 0.5 * _smallest_sq(f, 2), rel=1e-5
    )
    model.eval()  # evaluation: the task loss only
    assert float(trainer.compute_loss(model, dict(batch)).detach()) == pytest.approx(
        float(out.loss), rel=1e-5
    )


def test_a_few_steps_train_and_log_the_penalty(encoder, tmp_path):
    model = _classifier(encoder)
    before = model.bert.pooler.dense.weight.detach().clone()
    trainer = BSSTrainer(
        model=model, args=_args(tmp_path), train_dataset=_dataset(encoder), bss_eta=1.0
    )
    trainer.train()
    logged = [h["loss_bss"] for h in trainer.state.log_history if "loss_bss" in h]
    assert len(logged) == 3 and all(v > 0 for v in logged)  # one per step (logging_steps=1)
    assert not torch.equal(model.bert.pooler.dense.weight, before)


def test_bad_options_are_one_line(encoder, tmp_path):
    with pytest.raises(ConfigError, match="bss_features"):
        BSSTrainer(model=_classifier(encoder), args=_args(tmp_path), bss_features="mean")


def test_without_transformers_the_import_names_the_extra(monkeypatch):
    import sys

    from spectral_probe.errors import MissingExtraError

    monkeypatch.setitem(sys.modules, "transformers", None)
    monkeypatch.delitem(sys.modules, "spectral_probe.integrations.hf")
    with pytest.raises(MissingExtraError, match=r"spectral-probe\[hf\]"):
        import spectral_probe.integrations.hf  # noqa: F401
