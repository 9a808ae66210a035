"""Run directories made by hand (config.json + final.json) for aggregation and plot tests."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["fake_run"]


def fake_run(root: Path, name: str, *, data: str, method: str, rate: str, seed: int, acc: float,
              hp: dict | None = None, status: str = "finished") -> None:
    run = root / name
    run.mkdir(parents=True)
    cfg = {"model": "torchvision:resnet50:IMAGENET1K_V1", "data": data, "method": method, "rate": rate,
           "seed": seed, "preset": "paper", "lr": 0.01, "hp": hp or {}, "image_size": 224, "batch_size": 48}
    (run / "config.json").write_text(json.dumps({"format": "spectral-probe-run", "config": cfg}))
    (run / "final.json").write_text(json.dumps({"status": status, "evals": {"test": {"accuracy": acc}},
                                                "timings": {"train_seconds": 1.0}}))
