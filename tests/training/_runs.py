"""Run directories made by hand (config.json + final.json) for aggregation and plot tests."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["fake_run", "fake_glue_run"]


def fake_run(
    root: Path,
    name: str,
    *,
    data: str,
    method: str,
    rate: str,
    seed: int,
    acc: float,
    hp: dict | None = None,
    status: str = "finished",
) -> None:
    run = root / name
    run.mkdir(parents=True)
    cfg = {
        "model": "torchvision:resnet50:IMAGENET1K_V1",
        "data": data,
        "method": method,
        "rate": rate,
        "seed": seed,
        "preset": "paper",
        "lr": 0.01,
        "hp": hp or {},
        "image_size": 224,
        "batch_size": 48,
    }
    (run / "config.json").write_text(json.dumps({"format": "spectral-probe-run", "config": cfg}))
    (run / "final.json").write_text(
        json.dumps(
            {
                "status": status,
                "evals": {"test": {"accuracy": acc}},
                "timings": {"train_seconds": 1.0},
            }
        )
    )


def fake_glue_run(
    root: Path,
    name: str,
    *,
    task: str,
    method: str,
    seed: int,
    acc: float,
    f1: float | None = None,
    model: str = "bundled:minilm-l6",
    rate: str = "100%",
    lr: float = 2e-5,
    hp: dict | None = None,
    task_options: dict | None = None,
    status: str = "finished",
) -> None:
    """A text-classification run on ``glue-<task>`` as the engine writes it (config.json, final.json)."""
    run = root / name
    run.mkdir(parents=True)
    cfg = {
        "model": model,
        "data": f"glue-{task}:/data/glue_data",
        "method": method,
        "rate": rate,
        "seed": seed,
        "preset": "glue",
        "task": "text-classification",
        "optimizer": "adamw",
        "lr": lr,
        "epochs": 3,
        "iterations": None,
        "batch_size": 32,
        "hp": hp or {},
        "task_options": task_options or {},
        "device": "cpu",
        "log_every": 50,
    }
    test = {"accuracy": acc, "loss": 0.5, "n": 100, **({"f1": f1} if f1 is not None else {})}
    (run / "config.json").write_text(
        json.dumps(
            {
                "format": "spectral-probe-run",
                "config": cfg,
                "task": cfg["task"],
                "data": {"test_split": "dev"},
            }
        )
    )
    (run / "final.json").write_text(
        json.dumps({"status": status, "evals": {"test": test}, "timings": {"train_seconds": 1.0}})
    )
