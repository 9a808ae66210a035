"""The training loop on digits with tiny models: learning, run directory, resume, failures."""

from __future__ import annotations

import json

import pytest
import torch

from spectral_probe.analysis import compare_weights
from spectral_probe.errors import ConfigError, DataError, TrainingDivergedError
from spectral_probe.models import load_model, read_state_dict
from spectral_probe.regularizers import list_regularizers
from spectral_probe.training import RunDir, StopAfter, TrainingHook, finetune, load_run

from .conftest import tiny_config


def _same_weights(a, b) -> bool:
    sa, sb = read_state_dict(a), read_state_dict(b)
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_few_hundred_steps_learn_digits(tmp_path):
    cfg = tiny_config(method="l2+bss", iterations=300, lr_step=200)
    result = finetune(cfg, tmp_path / "run")
    m = result.metrics
    assert result.status == "finished"
    assert m["loss_task"].iloc[-3:].mean() < 0.6 * m["loss_task"].iloc[:3].mean()
    assert result.test_accuracy > 0.5  # chance is 0.1
    assert result.final["evals"]["test"]["n"] == 454


def test_run_directory_layout(tmp_path):
    cfg = tiny_config(method="l2-sp+bss", iterations=20, log_every=5, val=0.1, eval_every=10)
    result = finetune(cfg, tmp_path / "run")
    rd = RunDir(tmp_path / "run")
    names = {p.name for p in rd.path.iterdir()}
    assert names == {
        "config.json",
        "metrics.jsonl",
        "final.json",
        "model.safetensors",
        "model.json",
    }
    meta = json.loads((rd / "config.json").read_text())
    assert meta["config"] == cfg.resolve().to_dict()
    assert meta["config_hash"] == cfg.config_hash and "torch" in meta["versions"]
    assert meta["data"]["train_size"] + meta["data"]["val_size"] == 1343
    lines = rd.read_metrics()
    assert [r["iteration"] for r in lines] == [5, 10, 15, 20]
    first = lines[0]
    for key in (
        "lr",
        "loss",
        "loss_task",
        "loss_l2-sp",
        "loss_bss",
        "train_acc",
        "images_per_s",
        "sv",
        "sv_min",
    ):
        assert key in first
    assert len(first["sv"]) == 32 and first["sv"] == sorted(first["sv"], reverse=True)
    assert first["lr"] == pytest.approx(0.1)
    assert "val_acc" in lines[1]
    final = result.final
    assert (
        final["status"] == "finished" and final["val"]["n"] > 0 and 0 <= final["test_accuracy"] <= 1
    )
    assert set(final["timings"]) == {"train_seconds", "eval_seconds", "images_per_s"}
    # the toolkit checkpoint loads by path, with the pre-trained spec as its base
    loaded = load_model(str(result.model_path))
    assert (
        loaded.arch == "tiny:cnn"
        and loaded.num_classes == 10
        and loaded.classes == [str(i) for i in range(10)]
    )
    cmp = compare_weights("tiny:cnn", str(result.model_path))
    assert "conv1" in set(cmp.layers["layer"])
    assert not result.spectra.empty and set(result.spectra.columns) == {
        "iteration",
        "index",
        "sigma",
    }


def test_optimizer_groups_follow_the_preset(tmp_path):
    seen = {}

    class Peek(TrainingHook):
        def on_start(self, trainer):
            seen["groups"] = [
                (g["head"], g["lr"], g["weight_decay"], g["momentum"])
                for g in trainer.optimizer.param_groups
            ]

    finetune(tiny_config(method="l2", lr=None, iterations=2), tmp_path / "r", hooks=[Peek()])
    assert sorted(seen["groups"]) == [
        (False, pytest.approx(0.001), 0.01, 0.95),
        (True, 0.01, 0.01, 0.95),
    ]


def test_resume_is_bit_identical(tmp_path):
    cfg = tiny_config(method="l2-sp+bss", iterations=60, augment="paper", checkpoint_every=25)
    whole = finetune(cfg, tmp_path / "whole")
    part = finetune(cfg, tmp_path / "split", hooks=[StopAfter(33)])
    assert part.status == "interrupted" and RunDir(tmp_path / "split").has_state
    assert not (tmp_path / "split" / "final.json").exists()
    resumed = finetune(cfg, tmp_path / "split")
    assert resumed.status == "finished" and resumed.final["sessions"] == 2
    assert _same_weights(whole.model_path, resumed.model_path)
    assert resumed.test_accuracy == whole.test_accuracy
    cols = ["iteration", "loss", "loss_task", "loss_bss", "train_acc", "sv_min"]
    assert whole.metrics[cols].equals(resumed.metrics[cols])
    assert not RunDir(tmp_path / "split").has_state  # removed once finished


@pytest.mark.parametrize("method", [r.name for r in list_regularizers()])
def test_every_registered_method_trains(tmp_path, method):
    result = finetune(tiny_config(method=method, iterations=6, log_every=3), tmp_path / "r")
    assert result.status == "finished"
    assert result.metrics["loss"].notna().all()


def test_select_best_uses_the_validation_split(tmp_path):
    cfg = tiny_config(iterations=40, val=0.2, eval_every=10, select="best", keep_train_state=True)
    result = finetune(cfg, tmp_path / "r")
    vals = result.metrics.dropna(subset=["val_acc"])
    assert result.final["best_iteration"] in {10, 20, 30, 40}
    assert result.val_accuracy >= vals["val_acc"].max() - 1e-12
    assert RunDir(tmp_path / "r").has_state and not (tmp_path / "r" / "best.safetensors").exists()


def test_finished_runs_are_not_rerun(tmp_path):
    cfg = tiny_config(iterations=10)
    first = finetune(cfg, tmp_path / "r")
    again = finetune(cfg, tmp_path / "r")
    assert again.final == first.final
    with pytest.raises(ConfigError, match="found a finished run"):
        finetune(cfg, tmp_path / "r", resume=False)


def test_resume_with_another_config_names_the_keys(tmp_path):
    cfg = tiny_config(iterations=30)
    finetune(cfg, tmp_path / "r", hooks=[StopAfter(10)])
    before = sorted(p.name for p in (tmp_path / "r").iterdir())
    with pytest.raises(ConfigError) as info:
        finetune(cfg.with_overrides(lr=0.5, seed=2), tmp_path / "r", resume=True)
    msg = str(info.value)
    assert "lr: 0.1 != 0.5" in msg and "seed: 0 != 2" in msg and "\n" not in msg
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == before
    with pytest.raises(ConfigError, match="pass --resume"):
        finetune(cfg, tmp_path / "r", resume=False)
    with pytest.raises(ConfigError, match="expected a run to resume"):
        finetune(cfg, tmp_path / "none", resume=True)


class _Poison(TrainingHook):
    def __init__(self, at: int) -> None:
        self.at = at

    def on_step(self, trainer):
        if trainer.iteration == self.at:
            with torch.no_grad():
                trainer.model.fc.weight.fill_(float("nan"))


def test_divergence_keeps_the_last_good_checkpoint(tmp_path):
    cfg = tiny_config(iterations=60, checkpoint_every=20)
    with pytest.raises(TrainingDivergedError) as info:
        finetune(cfg, tmp_path / "r", hooks=[_Poison(25)])
    assert "iteration 26" in str(info.value) and "iteration 20" in str(info.value)
    final = json.loads((tmp_path / "r" / "final.json").read_text())
    assert final["status"] == "diverged" and final["last_checkpoint"] == 20
    state = torch.load(tmp_path / "r" / "train_state.pt", weights_only=True)
    assert state["iteration"] == 20
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert not (tmp_path / "r" / "model.safetensors").exists()
    assert load_run(tmp_path / "r").status == "diverged"


def test_bad_inputs_leave_no_run_directory(tmp_path):
    with pytest.raises(DataError, match="at least 2 images per class"):
        finetune(tiny_config(rate="1"), tmp_path / "a")
    with pytest.raises(ConfigError, match="batch size > bss.k"):
        finetune(tiny_config(method="bss", batch_size=4, hp={"bss.k": 4}), tmp_path / "b")
    with pytest.raises(DataError, match="at least batch_size"):
        finetune(tiny_config(rate="2", batch_size=32), tmp_path / "c")
    assert not any(tmp_path.iterdir())


def test_epochs_and_ten_crop(tmp_path):
    cfg = tiny_config(
        epochs=0.5, iterations=None, image_size=8, resize=10, ten_crop=True, augment="paper"
    )
    result = finetune(cfg, tmp_path / "r")
    per_epoch = 1343 // 32
    assert result.final["iterations"] == -(-per_epoch // 2)
    assert result.final["evals"]["test"]["n"] == 454


def test_image_files_paper_transforms_ten_crop_and_workers(tmp_path):
    from _fixtures.datasets import make_cub200

    root = make_cub200(tmp_path / "data", n_classes=3, per_class=14, test_per_class=4, size=12)
    cfg = tiny_config(
        data=f"cub200:{root}",
        rate="50%",
        batch_size=8,
        iterations=12,
        log_every=4,
        image_size=8,
        resize=10,
        augment="paper",
        ten_crop=True,
        eval_batch_size=5,
    )
    main = finetune(cfg, tmp_path / "main")
    workers = finetune(cfg.with_overrides(num_workers=2), tmp_path / "workers")
    assert main.final["evals"]["test"]["n"] == 12
    # augmentation is seeded per batch, not per process: loader workers change nothing
    assert _same_weights(main.model_path, workers.model_path)
