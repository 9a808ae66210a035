"""The Table 4 view: GLUE runs per model and method, one column per task, beside the paper's."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from spectral_probe.training import PAPER_TABLE4, collect_glue, table4

from ._runs import fake_glue_run, fake_run


def test_paper_numbers_are_table4():
    assert PAPER_TABLE4["none"] == {
        "MNLI-m": 84.4,
        "QNLI": 88.4,
        "MRPC": 86.7,
        "SST-2": 92.7,
        "avg": 88.0,
    }
    assert PAPER_TABLE4["bss"] == {
        "MNLI-m": 85.0,
        "QNLI": 89.6,
        "MRPC": 87.9,
        "SST-2": 93.2,
        "avg": 88.9,
    }
    for row in PAPER_TABLE4.values():  # the printed average is the mean of the four, rounded
        assert np.mean([v for k, v in row.items() if k != "avg"]) == pytest.approx(
            row["avg"], abs=0.06
        )


def _runs(tmp_path):
    for seed, (a, b) in enumerate([(0.80, 0.82), (0.84, 0.85), (0.82, 0.86)]):
        fake_glue_run(
            tmp_path,
            f"mrpc-none-s{seed}",
            task="mrpc",
            method="none",
            seed=seed,
            acc=a,
            f1=a + 0.05,
        )
        fake_glue_run(
            tmp_path,
            f"mrpc-bss-s{seed}",
            task="mrpc",
            method="bss",
            seed=seed,
            acc=b,
            f1=b + 0.05,
            hp={"bss.eta": 0.001, "bss.k": 1},
        )
    for seed, acc in enumerate([0.90, 0.92]):
        fake_glue_run(
            tmp_path, f"sst2-none-s{seed}", task="sst2", method="none", seed=seed, acc=acc
        )
    fake_glue_run(tmp_path, "mnli-none-s0", task="mnli", method="none", seed=0, acc=0.70)
    fake_glue_run(
        tmp_path,
        "mnli-bss-s0",
        task="mnli",
        method="bss",
        seed=0,
        acc=0.71,
        hp={"bss.eta": 0.001, "bss.k": 1},
    )
    fake_glue_run(
        tmp_path, "sst2-none-s9", task="sst2", method="none", seed=9, acc=0.10, status="diverged"
    )
    fake_run(
        tmp_path, "dogs", data="stanford-dogs:/d", method="l2", rate="15%", seed=0, acc=0.5
    )  # not text


def test_collect_glue_reads_finished_text_runs_only(tmp_path):
    _runs(tmp_path)
    runs = collect_glue(tmp_path)
    assert len(runs) == 10 and set(runs["glue_task"]) == {"MRPC", "SST-2", "MNLI-m"}
    row = runs.set_index("run_id").loc["mrpc-bss-s1"]
    assert (row["dataset"], row["method"], row["seed"], row["model"]) == (
        "glue-mrpc",
        "bss",
        1,
        "bundled:minilm-l6",
    )
    assert (
        row["accuracy"] == pytest.approx(85.0)
        and row["f1"] == pytest.approx(90.0)
        and row["hp.bss.k"] == 1
    )
    assert np.isnan(runs.set_index("run_id").loc["sst2-none-s0", "f1"])


def test_table4_aggregates_per_model_method_and_task(tmp_path):
    _runs(tmp_path)
    t = table4(tmp_path)
    assert t.keys == ("model", "method") and t.tasks == ("MNLI-m", "QNLI", "MRPC", "SST-2")
    assert list(t.rows["method"]) == ["none", "bss"]  # plain fine-tuning first, as in the paper
    rows = t.rows.set_index("method")
    none, bss = rows.loc["none"], rows.loc["bss"]
    assert (
        none["MRPC_mean"] == pytest.approx(82.0)
        and none["MRPC_std"] == pytest.approx(2.0)
        and none["MRPC_n"] == 3
    )
    assert (
        none["SST-2_mean"] == pytest.approx(91.0)
        and none["MNLI-m_n"] == 1
        and np.isnan(none["MNLI-m_std"])
    )
    assert none["QNLI_n"] == 0 and np.isnan(none["QNLI_mean"])
    assert none["avg"] == pytest.approx((70 + 82 + 91) / 3) and none["tasks"] == 3
    assert none["paper"] == "BERT" and none["paper_MRPC"] == 86.7
    assert none["paper_avg"] == pytest.approx(
        (84.4 + 86.7 + 92.7) / 3
    )  # over the same tasks as ours
    assert bss["paper"] == "BERT + BSS" and bss["avg"] == pytest.approx((71 + 84.3333333) / 2)
    assert bss["paper_avg"] == pytest.approx((85.0 + 87.9) / 2)
    cells = t.cells.set_index(["method", "glue_task"])
    assert cells.loc[("bss", "MRPC"), "f1_mean"] == pytest.approx(89.3333333)
    assert cells.loc[("none", "SST-2"), "paper_accuracy"] == 92.7
    assert list(t.cells["glue_task"][t.cells["method"] == "none"]) == [
        "MNLI-m",
        "MRPC",
        "SST-2",
    ]  # paper order
    text = t.to_markdown()
    assert "| model | method | MNLI-m | QNLI | MRPC | SST-2 | avg | paper | paper MNLI-m |" in text
    assert (
        "| bundled:minilm-l6 | none | 70.00 (n=1) |  | 82.00 ± 2.00 (n=3) | 91.00 ± 1.41 (n=2) | 81.00 | BERT | 84.4 | 88.4 | 86.7 | 92.7 | 87.9 |"
        in text
    )
    assert "BERT-base" in text and "Ours: bundled:minilm-l6" in text


def test_all_four_tasks_take_the_papers_own_average(tmp_path):
    for task, acc in zip(("mnli", "qnli", "mrpc", "sst2"), (0.84, 0.88, 0.87, 0.93)):
        fake_glue_run(
            tmp_path, f"{task}-bss", task=task, method="bss", seed=0, acc=acc, hp={"bss.k": 1}
        )
    fake_glue_run(tmp_path, "sst2-l2", task="sst2", method="l2+bss", seed=0, acc=0.9)
    rows = table4(tmp_path).rows.set_index("method")
    assert rows.loc["bss", "paper_avg"] == 88.9 and rows.loc["bss", "avg"] == pytest.approx(88.0)
    assert rows.loc["l2+bss", "paper"] == "" and np.isnan(rows.loc["l2+bss", "paper_avg"])


def test_varying_settings_become_row_keys(tmp_path):
    for k in (1, 2):
        for seed in (0, 1):
            fake_glue_run(
                tmp_path,
                f"k{k}-s{seed}",
                task="mrpc",
                method="bss",
                seed=seed,
                acc=0.8 + 0.01 * k,
                rate="15%",
                hp={"bss.eta": 0.001, "bss.k": k},
                task_options={"max_length": 64 * k},
            )
    fake_glue_run(
        tmp_path,
        "bert",
        task="mrpc",
        method="bss",
        seed=0,
        acc=0.85,
        rate="15%",
        lr=3e-5,
        model="hf:/models/bert-base-uncased",
        hp={"bss.eta": 0.001, "bss.k": 1},
        task_options={"max_length": 64},
    )
    t = table4(tmp_path)
    assert t.keys == ("model", "method", "rate", "lr", "hp.bss.k", "task_option.max_length")
    assert len(t.rows) == 3 and sorted(t.rows["MRPC_n"]) == [1, 2, 2]
    assert "| bundled:minilm-l6 | bss | 15% | 2e-05 | 2 | 128 | " in t.to_markdown()
    assert "Ours: bundled:minilm-l6, hf:/models/bert-base-uncased;" in t.to_markdown()


def test_outputs_and_the_empty_table(tmp_path):
    _runs(tmp_path / "runs")
    t = table4(tmp_path / "runs")
    written = t.to_csv(tmp_path / "out")
    assert sorted(p.name for p in written) == ["cells.csv", "runs.csv"]
    assert len(pd.read_csv(tmp_path / "out" / "cells.csv")) == 5
    payload = json.loads(t.to_json(tmp_path / "out" / "table.json").read_text())
    assert (
        payload["keys"] == ["model", "method"]
        and len(payload["rows"]) == 2
        and len(payload["runs"]) == 10
    )
    assert payload["rows"][0]["QNLI_mean"] is None  # strict JSON: NaN -> null
    (tmp_path / "empty").mkdir()
    empty = table4(tmp_path / "empty")
    assert (
        empty.cells.empty
        and empty.to_markdown() == "_no finished text-classification (GLUE) runs_\n"
    )
