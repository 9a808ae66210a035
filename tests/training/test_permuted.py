"""The permuted-pixel protocol: the permutation, the two phases, EWC's penalty by hand, Table 3."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _fixtures.datasets import make_glue_task

from spectral_probe.data import load_dataset
from spectral_probe.errors import ConfigError
from spectral_probe.models import save_checkpoint
from spectral_probe.regularizers import EWC, StepContext
from spectral_probe.training import (
    MLP,
    FinetuneConfig,
    PermutedPixelsTask,
    PixelPermutation,
    TrainingHook,
    finetune,
    pixel_permutation,
    run_permuted,
    table3,
)

SMALL = dict(
    model="mlp:64-64-64-10",
    data="digits",
    task="permuted",
    preset="permuted",
    epochs=3,
    batch_size=32,
    log_every=20,
    method="ewc",
    hp={"ewc.lam": 10.0, "ewc.fisher_samples": 256},
)


def small(**changes) -> FinetuneConfig:
    """A permuted run on digits with a small MLP (a second or two per phase)."""
    return FinetuneConfig(**{**SMALL, **changes})


def _task_a_checkpoint(path, sizes=(64, 64, 64, 10)):
    torch.manual_seed(0)
    return save_checkpoint(
        path,
        MLP(list(sizes)),
        base="mlp:" + "-".join(map(str, sizes)),
        head="fc",
        num_classes=sizes[-1],
    )


def test_permutation_is_fixed_per_seed_and_differs_across_seeds():
    p0 = pixel_permutation(784, 0)
    assert np.array_equal(p0, pixel_permutation(784, 0)) and np.array_equal(
        np.sort(p0), np.arange(784)
    )
    assert not np.array_equal(p0, pixel_permutation(784, 1))
    x = torch.arange(2 * 64, dtype=torch.uint8).view(2, 1, 8, 8)
    y = PixelPermutation(pixel_permutation(64, 3))(x)
    assert y.dtype == torch.float32 and y.shape == (2, 64)
    assert torch.equal(y, x.flatten(1).float()[:, torch.from_numpy(pixel_permutation(64, 3))] / 255)
    assert torch.equal(PixelPermutation(None)(x[0]), x[0].flatten().float() / 255)


@pytest.mark.parametrize("seed", [0, 1])
def test_train_and_test_share_the_permutation_and_task_a_is_unpermuted(tmp_path, seed):
    ckpt = _task_a_checkpoint(tmp_path / "a.safetensors")
    cfg = small(model=str(ckpt), seed=seed).resolve()
    task = PermutedPixelsTask()
    setup = task.setup(cfg)
    perm = torch.from_numpy(pixel_permutation(64, seed))
    raw_train, raw_test = load_dataset("digits", "train"), load_dataset("digits", "test")
    flat = lambda img: img.flatten().float() / 255  # noqa: E731
    for i in (0, 5, 100):
        assert torch.equal(setup.train[i][0], flat(raw_train[i][0])[perm])
        assert torch.equal(setup.evals["test"][i][0], flat(raw_test[i][0])[perm])
        assert torch.equal(setup.evals["task_a"][i][0], flat(raw_test[i][0]))
    batch, _ = setup.train[np.array([0, 5, 100])]  # the batched path agrees with the per-item one
    assert torch.equal(batch[1], setup.train[5][0])
    fisher_x, _ = next(iter(task.prepare_loader(setup, lambda: None)))
    originals = {tuple(flat(raw_train[i][0]).tolist()) for i in range(len(raw_train))}
    assert fisher_x.shape == (32, 64) and all(tuple(row.tolist()) in originals for row in fisher_x)
    assert setup.info["phase"] == "B" and setup.info["permutation_seed"] == seed
    fixed = PermutedPixelsTask().setup(cfg.with_overrides(task_options={"permutation_seed": 7}))
    assert torch.equal(
        fixed.train[0][0], flat(raw_train[0][0])[torch.from_numpy(pixel_permutation(64, 7))]
    )


def test_ewc_penalty_matches_a_hand_computation():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 3.0], [2.0, 2.0, -1.0]])
    y = torch.tensor([0, 1, 1])
    ewc = EWC(lam=4.0, fisher="empirical", fisher_samples=3)
    wrapper = torch.nn.Sequential(model)
    ewc.prepare(wrapper, head="0", loader=[(x, y)])
    # the empirical Fisher of softmax regression, by hand: g_W = (p - e_y) x^T, g_b = p - e_y
    W, b = (
        model.weight.detach().numpy().astype(np.float64),
        model.bias.detach().numpy().astype(np.float64),
    )
    fw, fb = np.zeros_like(W), np.zeros_like(b)
    for xi, yi in zip(x.numpy().astype(np.float64), y.numpy()):
        z = W @ xi + b
        p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
        r = p - np.eye(2)[yi]
        fw += np.outer(r, xi) ** 2 / 3
        fb += r**2 / 3
    dw, db = np.array([[0.1, -0.2, 0.3], [0.0, 0.5, -0.1]]), np.array([0.2, -0.4])
    with torch.no_grad():
        model.weight += torch.tensor(dw, dtype=torch.float32)
        model.bias += torch.tensor(db, dtype=torch.float32)
    expected = 0.5 * 4.0 * ((fw * dw**2).sum() + (fb * db**2).sum())
    ctx = StepContext(wrapper, "0", x, y, wrapper(x))
    assert ewc.penalty(ctx).item() == pytest.approx(expected, rel=1e-5)


def test_ewc_plus_bss_permuted_run_reports_both_tasks_and_table3(tmp_path):
    res = run_permuted(small(method="ewc+bss"), tmp_path)
    acc = res.accuracies()
    assert res.status == "finished" and all(
        0 < acc[k] <= 1 for k in ("task_a", "task_b", "task_a_before_b")
    )
    assert acc["average"] == pytest.approx((acc["task_a"] + acc["task_b"]) / 2)
    m = res.task_b.metrics
    assert (
        (m["loss_ewc"] >= 0).all()
        and (m["loss_bss"] > 0).all()
        and m["loss_ewc"].iloc[0] < m["loss_ewc"].iloc[-1]
    )
    a_cfg = json.loads((res.task_a.run_dir / "config.json").read_text())
    assert a_cfg["config"]["method"] == "none" and a_cfg["data"]["phase"] == "A"
    assert res.task_b.config.model == str(res.task_a.run_dir / "model.safetensors")
    # EWC alone reuses the same task-A run (same seed): one A directory, two B directories
    other = run_permuted(small(method="ewc"), tmp_path)
    assert (
        other.task_a.run_dir == res.task_a.run_dir
        and len([p for p in tmp_path.iterdir() if p.is_dir()]) == 3
    )  # runs (a lock file sits beside them)
    t3 = table3(tmp_path)
    assert list(t3.cells["method"]) == ["ewc", "ewc+bss"] and list(t3.cells["n"]) == [1, 1]
    row = t3.cells.set_index("method").loc["ewc+bss"]
    assert row["task_a_mean"] == pytest.approx(100 * acc["task_a"]) and row["paper_task_b"] == 98.04
    text = t3.to_markdown()
    assert "| digits | ewc+bss | 1 |" in text and "96.46" in text and "permuted digits" in text


def test_permuted_task_refuses_bad_inputs(tmp_path):
    with pytest.raises(
        ConfigError, match=r"expected an MLP with 64 inputs and 10 outputs for digits"
    ):
        finetune(small(model="mlp:784-400-400-10", method="none", hp={}), tmp_path / "a")
    with pytest.raises(ConfigError, match="expected task A \\(phase A\\) without ewc"):
        finetune(small(), tmp_path / "d")  # a plain finetune of an mlp: spec is task A
    with pytest.raises(ConfigError, match="expected task A's checkpoint"):
        finetune(small(task_options={"phase": "B"}), tmp_path / "b")
    with pytest.raises(ConfigError, match="expected task options of permuted"):
        finetune(small(method="none", hp={}, task_options={"phases": "A"}), tmp_path / "c")
    glue = make_glue_task(tmp_path / "glue", "sst2", n=8)
    with pytest.raises(ConfigError, match="expected an in-memory image dataset"):
        run_permuted(small(data=f"glue-sst2:{glue}"), tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
    assert not any((tmp_path / d).exists() for d in "abcd")


@pytest.mark.gpu
def test_permuted_run_on_cuda(tmp_path):
    """Task A's Fisher batches follow the model to the GPU; EWC's buffers live there too."""
    seen = {}

    class Inspect(TrainingHook):
        def on_start(self, trainer):
            seen["buffers"] = {b.device.type for b in trainer.regularizer.buffers()}
            seen["amp"] = trainer.amp

    res = run_permuted(
        small(method="ewc+bss", device="cuda", amp="bf16"), tmp_path, hooks=[Inspect()]
    )
    assert res.status == "finished" and seen == {"buffers": {"cuda"}, "amp": torch.bfloat16}
    assert res.task_b.metrics["loss"].notna().all() and 0 < res.accuracies()["task_a"] <= 1


def test_sweep_of_permuted_cells_shares_task_a(tmp_path):
    from spectral_probe.training.sweep import run_cell

    for method in ("ewc", "ewc+bss"):
        cfg = small(method=method).resolve()
        summary = run_cell(cfg.to_dict(), str(tmp_path / cfg.run_id))
        assert summary["status"] == "finished"
    table = table3(tmp_path)
    assert sorted(table.runs["method"]) == ["ewc", "ewc+bss"]
    task_a_runs = [p for p in tmp_path.iterdir() if p.is_dir() and "-none-" in p.name]
    assert len(task_a_runs) == 1  # both cells fine-tuned task B from the same task-A network
