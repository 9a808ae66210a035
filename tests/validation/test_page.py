"""The validation page's tables: exported from run directories, rendered, kept in step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from spectral_probe.errors import ConfigError
from spectral_probe.training.aggregate import collect_runs
from spectral_probe.validation.page import export_runs, render_blocks, update_page

ROOT = Path(__file__).resolve().parents[2]


def test_export_runs_reads_the_run_directories(tiny_validation):
    _, out = tiny_validation
    runs = export_runs(out / "runs")
    ref = collect_runs(out / "runs")
    assert len(runs) == len(ref) > 0
    by_id = ref.set_index("run_id")["test_accuracy"]
    for row in runs.itertuples():
        assert row.test_accuracy == pytest.approx(by_id[row.run_id], nan_ok=True)
        assert row.source_norm == ""  # no DELTA in the tiny suite
    assert np.isfinite(runs["first_loss_task"]).all()
    with pytest.raises(ConfigError, match="finished runs"):
        export_runs(out / "signals")


def _source_norm_data() -> pd.DataFrame:
    acc = {"l2+bss": [70.0, 71.0, 72.0], "delta+bss": [73.0, 73.5, 74.5]}
    rows = [
        {"model": "m", "dataset": "d", "rate": "5%", "method": method, "source_norm": norm,
         "seed": seed, "iterations": 10, "test_accuracy": acc[method][seed],
         "first_loss_task": 2.0, "first_loss_delta": 0.0 if norm else np.nan,
         "train_seconds": 1.0, "run_id": "x"}
        for method, norm in (("l2+bss", ""), ("delta+bss", "batch"))
        for seed in range(3)
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_page_blocks_render_and_stay_in_step(tmp_path, tiny_validation):
    result, _ = tiny_validation
    data = tmp_path / "validation" / "data"
    (data / "quick").mkdir(parents=True)
    _source_norm_data().to_csv(data / "delta-source-norm.csv", index=False)
    result.to_csv(data / "quick")
    page = tmp_path / "page.md"
    names = ["delta-source-norm", "quick-policies", "retrospective-lodo"]
    page.write_text(
        "".join(f"text\n<!-- generated: {n} -->\nold\n<!-- end: {n} -->\n" for n in names)
    )
    assert update_page(page, check=True) is False
    assert "old" in page.read_text()  # --check writes nothing
    assert update_page(page) is False
    assert update_page(page, check=True) is True
    text = page.read_text()
    # delta+bss (batch) minus l2+bss per seed: 3, 2.5, 2.5 -> mean 2.67
    assert "| m, d 5% | delta+bss (batch) | 3 | 73.67 |" in text and "+2.67 [" in text
    assert "0.61" in text  # the leave-one-dataset-out regret on Table 2
    best = result.policies.iloc[0]
    assert f"| {best['policy']} | {best['regret']:.2f} |" in text


def test_unknown_or_missing_blocks():
    with pytest.raises(ConfigError, match="expected blocks among"):
        render_blocks(ROOT, ["nope"])


def test_the_committed_validation_page_is_up_to_date():
    """Every table of docs/validation.md is what its committed data give."""
    assert update_page(ROOT / "docs" / "validation.md", check=True)
