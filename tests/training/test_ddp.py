"""Data-parallel training: a 2-process gloo run on CPU against the same run in one process."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from spectral_probe.models import read_state_dict
from spectral_probe.training import finetune

from .conftest import tiny_config

WORLD = 2


def _config(**changes):
    # no BatchNorm and no augmentation: the global batch and its gradient are the same
    # whatever the number of processes, so the weights must match the one-process run
    return tiny_config(
        model="tiny:mlp",
        method="l2-sp+bss",
        iterations=30,
        batch_size=32,
        hp={"bss.gather": True},
        checkpoint_every=15,
        **changes,
    )


def _worker(rank: int, port: int, out: str) -> None:
    import os

    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    from . import _tiny  # noqa: F401  (the tiny model source, in this process too)

    finetune(_config(), out)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(tmp_path: Path) -> None:
    # spawn, not fork: forking a process whose OpenMP pool has run can hang the children
    mp.spawn(_worker, args=(_free_port(), str(tmp_path / "ddp")), nprocs=WORLD, join=True)
    single = finetune(_config(), tmp_path / "one")
    ddp = read_state_dict(tmp_path / "ddp" / "model.safetensors")
    one = read_state_dict(single.model_path)
    for key in one:
        torch.testing.assert_close(ddp[key], one[key], rtol=1e-4, atol=1e-5)
    import json

    final = json.loads((tmp_path / "ddp" / "final.json").read_text())
    meta = json.loads((tmp_path / "ddp" / "config.json").read_text())
    assert meta["world_size"] == 2 and final["world_size"] == 2
    assert final["evals"]["test"]["n"] == 454  # both shards counted once
    assert final["test_accuracy"] == pytest.approx(single.test_accuracy, abs=0.01)
