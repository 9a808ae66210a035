"""Table 3 from hand-made permuted-pixel run directories: aggregation and the paper's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from spectral_probe.training import PAPER_TABLE3, table3


def _task_b_run(root: Path, name: str, *, method: str, rate, seed: int, a: float, b: float) -> None:
    run = root / name
    run.mkdir(parents=True)
    cfg = {
        "model": str(root / f"a{seed}" / "model.safetensors"),
        "data": "fashion-mnist",
        "method": method,
        "rate": rate,
        "seed": seed,
        "task": "permuted",
        "hp": {},
    }
    (run / "config.json").write_text(
        json.dumps({"format": "spectral-probe-run", "config": cfg, "data": {"phase": "B"}})
    )
    (run / "final.json").write_text(
        json.dumps(
            {
                "status": "finished",
                "timings": {"train_seconds": 2.0},
                "evals": {"test": {"accuracy": b}, "task_a": {"accuracy": a}},
            }
        )
    )


def test_mean_std_per_method_beside_the_paper_and_mixed_rate_forms(tmp_path):
    for seed, (a, b) in enumerate([(0.80, 0.90), (0.84, 0.88)]):
        _task_b_run(tmp_path, f"ewc{seed}", method="ewc", rate="100%", seed=seed, a=a, b=b)
        _task_b_run(
            tmp_path, f"bss{seed}", method="ewc+bss", rate="100%", seed=seed, a=a + 0.01, b=b
        )
    _task_b_run(tmp_path, "count", method="ewc", rate=30, seed=0, a=0.5, b=0.5)  # a count per class
    t = table3(tmp_path)
    assert t.keys == ("dataset", "method", "rate")
    assert [(r.method, str(r.rate), int(r.n)) for r in t.cells.itertuples()] == [
        ("ewc", "100%", 2),
        ("ewc", "30", 1),
        ("ewc+bss", "100%", 2),
    ]
    ewc = t.cells.iloc[0]
    np.testing.assert_allclose(
        [ewc.task_a_mean, ewc.task_b_mean, ewc.average_mean], [82.0, 89.0, 85.5]
    )
    np.testing.assert_allclose(ewc.task_a_std, np.std([80.0, 84.0], ddof=1))
    assert (ewc.paper_task_a, ewc.paper_task_b, ewc.paper_average) == PAPER_TABLE3["ewc"]
    md = t.to_markdown()
    assert (
        "| fashion-mnist | ewc+bss | 100% | 2 | 83.00 ± 2.83 | 89.00 ± 1.41 | 86.00 ± 0.71 | 96.46 | 98.04 | 97.25 |"
        in md
    )
