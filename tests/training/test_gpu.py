"""The engine on CUDA: AMP (bf16 and fp16 with loss scaling), channels-last, resume, NCCL DDP.

Skipped without CUDA (run them on a GPU machine: ``pytest -m gpu tests/training``).
"""

from __future__ import annotations

import json
import socket

import pytest
import torch

from spectral_probe.models import load_model, read_state_dict
from spectral_probe.training import StopAfter, TrainingHook, finetune

from .conftest import tiny_config

pytestmark = pytest.mark.gpu


def _resnet(**changes):
    base = dict(
        model="torchvision:resnet18",
        method="l2-sp+bss",
        iterations=40,
        batch_size=48,
        image_size=32,
        resize=36,
        lr=0.05,
        device="cuda",
        augment="paper",
        log_every=10,
        checkpoint_every=20,
    )
    base.update(changes)
    return tiny_config(**base)


class _Inspect(TrainingHook):
    def __init__(self) -> None:
        self.seen: dict = {}

    def on_start(self, trainer):
        self.seen["channels_last"] = trainer.channels_last
        self.seen["amp"] = trainer.amp
        self.seen["param_device"] = next(trainer.model.parameters()).device.type
        self.seen["buffers"] = {b.device.type for b in trainer.regularizer.buffers()}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_channels_last_run_learns(tmp_path, amp):
    hook = _Inspect()
    result = finetune(
        _resnet(amp=amp, iterations=120, lr_step=100, keep_train_state=True),
        tmp_path / "r",
        hooks=[hook],
    )
    assert hook.seen == {
        "channels_last": True,
        "amp": torch.bfloat16 if amp == "bf16" else torch.float16,
        "param_device": "cuda",
        "buffers": {"cuda"},
    }
    assert result.status == "finished"
    assert result.metrics["loss"].notna().all() and result.metrics["sv_min"].notna().all()
    assert result.metrics["loss_task"].iloc[-1] < result.metrics["loss_task"].iloc[0]
    assert result.test_accuracy > 0.3
    meta = json.loads((tmp_path / "r" / "config.json").read_text())
    assert meta["amp"] == ("bfloat16" if amp == "bf16" else "float16") and meta[
        "device"
    ].startswith("cuda")
    state = torch.load(tmp_path / "r" / "train_state.pt", weights_only=True)
    assert bool(state["scaler"]) == (amp == "fp16")  # loss scaling only for float16
    loaded = load_model(str(result.model_path))  # the checkpoint loads on the CPU
    assert next(loaded.model.parameters()).device.type == "cpu"


def test_gpu_first_step_matches_cpu_without_amp(tmp_path):
    losses = {}

    class First(TrainingHook):
        def __init__(self, key):
            self.key = key

        def on_log(self, trainer, record):
            losses.setdefault(self.key, record["loss"])

    for device in ("cpu", "cuda"):
        cfg = tiny_config(
            method="l2-sp+bss",
            iterations=1,
            log_every=1,
            device=device,
            amp="off",
            channels_last="off",
        )
        finetune(cfg, tmp_path / device, hooks=[First(device)])
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-4)


def test_resume_on_gpu_continues_the_run(tmp_path):
    cfg = _resnet(iterations=40, amp="fp16")
    whole = finetune(cfg, tmp_path / "whole")
    finetune(cfg, tmp_path / "split", hooks=[StopAfter(25)])
    resumed = finetune(cfg, tmp_path / "split")
    assert resumed.final["sessions"] == 2 and resumed.final["iterations"] == 40
    a, b = read_state_dict(whole.model_path), read_state_dict(resumed.model_path)
    # cuDNN autotuning picks kernels per process: close, not bit-identical (bit-exact on CPU)
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], rtol=0.05, atol=0.05)


def test_ten_crop_evaluation_on_gpu(tmp_path):
    result = finetune(_resnet(iterations=5, ten_crop=True, amp="bf16"), tmp_path / "r")
    assert result.final["evals"]["test"]["n"] == 454


def _nccl_worker(rank: int, port: int, out: str) -> None:
    import os

    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    from . import _tiny  # noqa: F401

    finetune(_resnet(hp={"bss.gather": True}, iterations=20), out)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs for NCCL")
def test_two_gpu_nccl_run(tmp_path):
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_nccl_worker, args=(port, str(tmp_path / "r")), nprocs=2, join=True)
    final = json.loads((tmp_path / "r" / "final.json").read_text())
    assert final["status"] == "finished" and final["world_size"] == 2
