"""The paper's Table 4 view: GLUE dev accuracy of text-classification runs, one column per task.

Collects the finished text-classification runs (:mod:`~spectral_probe.training.text`) under a
folder, one row per run (seed), and aggregates them per cell — model, method, rate (shown
when it varies or is not 100 %), any other config field, hyperparameter or task option that
varies, and the GLUE task — as mean ± sample standard deviation over the seeds of the dev-set
accuracy (MNLI: matched), plus F1 for MRPC. Laid out as the paper's table: one row per
model × method (× the varying keys), one column per GLUE task (MNLI-m, QNLI, MRPC, SST-2) and
their average over the tasks present in the row, beside the paper's row for the method
(:data:`PAPER_TABLE4`: BERT-base, plain fine-tuning vs with BSS). Accuracies are in percent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_json
from .aggregate import RunsAndCells, percent
from .config import OPERATIONAL_KEYS
from .rundir import iter_run_records

__all__ = ["PAPER_TABLE4", "PAPER_ROWS", "GLUE_TASKS", "collect_glue", "Table4", "table4"]

#: the data spec names of the GLUE tasks -> the paper's column names, in the paper's order
GLUE_TASKS: dict[str, str] = {
    "glue-mnli": "MNLI-m",
    "glue-qnli": "QNLI",
    "glue-mrpc": "MRPC",
    "glue-sst2": "SST-2",
}
#: Table 4 of the paper (BERT-base, GLUE dev sets, accuracy %): method -> task column -> value
PAPER_TABLE4: dict[str, dict[str, float]] = {
    "none": {"MNLI-m": 84.4, "QNLI": 88.4, "MRPC": 86.7, "SST-2": 92.7, "avg": 88.0},
    "bss": {"MNLI-m": 85.0, "QNLI": 89.6, "MRPC": 87.9, "SST-2": 93.2, "avg": 88.9},
}
#: our method -> the name of the paper's row (the glue scenario's default, ``none``, is plain fine-tuning)
PAPER_ROWS: dict[str, str] = {"none": "BERT", "bss": "BERT + BSS"}

_NOT_KEYS = {"seed", "data_seed", "data", "task", "model", "method", "rate", *OPERATIONAL_KEYS}
_VALUES = {"run_id", "path", "dataset", "glue_task", "accuracy", "f1", "loss", "train_seconds"}


def collect_glue(root: str | Path) -> pd.DataFrame:
    """One row per finished text-classification run under ``root`` (any depth).

    Columns: ``run_id``, ``path``, ``dataset`` (the data spec's name), ``glue_task`` (the
    paper's column: ``MNLI-m``, ``QNLI``, ``MRPC``, ``SST-2``; another text data set keeps its
    name), the scalar config fields (``model``, ``method``, ``rate``, ``seed``, ``lr`` ...), one
    ``hp.<term>.<name>`` column per hyperparameter and one ``task_option.<name>`` per task
    option, ``accuracy`` and ``f1`` (percent, on the dev set; F1 for MRPC only), ``loss``,
    ``train_seconds``.
    """
    rows: list[dict[str, Any]] = []
    for run, meta, final in iter_run_records(root):
        cfg = meta.get("config") or {}
        if cfg.get("task") != "text-classification" or final.get("status") != "finished":
            continue
        test = (final.get("evals") or {}).get("test") or {}
        dataset = str(cfg.get("data", "")).partition(":")[0]
        row: dict[str, Any] = {
            "run_id": run.name,
            "path": str(run),
            "dataset": dataset,
            "glue_task": GLUE_TASKS.get(dataset, dataset),
        }
        row.update({k: v for k, v in cfg.items() if not isinstance(v, (dict, list))})
        row.update({f"hp.{k}": v for k, v in (cfg.get("hp") or {}).items()})
        row.update({f"task_option.{k}": v for k, v in (cfg.get("task_options") or {}).items()})
        row.update(
            accuracy=percent(test.get("accuracy")),
            f1=percent(test.get("f1")),
            loss=test.get("loss", np.nan),
            train_seconds=(final.get("timings") or {}).get("train_seconds"),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _task_order(present: Any) -> list[str]:
    """The paper's four columns, then any other text data set present."""
    return [*GLUE_TASKS.values(), *sorted(set(map(str, present)) - set(GLUE_TASKS.values()))]


def _paper_average(method: str, tasks: list[str]) -> float:
    """The paper's average over ``tasks`` (its own printed average when all four are there)."""
    paper = PAPER_TABLE4.get(method)
    if paper is None or not tasks or any(t not in paper for t in tasks):
        return np.nan
    if sorted(tasks) == sorted(GLUE_TASKS.values()):
        return paper["avg"]
    return float(np.mean([paper[t] for t in tasks]))


@dataclass(frozen=True)
class Table4(RunsAndCells):
    """Aggregated GLUE runs, Table-4 style.

    Attributes:
        runs: :func:`collect_glue`, one row per run (seed).
        cells: one row per cell (the key columns and ``glue_task``): ``n``, ``accuracy_mean``,
            ``accuracy_std``, ``f1_mean``, ``f1_std`` and the paper's ``paper_accuracy`` (methods
            ``none`` and ``bss``).
        rows: the table as laid out: one row per key, ``<task>_mean``/``<task>_std``/``<task>_n``
            per task column, ``avg`` (over the tasks present), ``tasks`` (their number), ``paper``
            (the paper's row name), ``paper_<task>`` and ``paper_avg`` (over the same tasks).
        keys: the columns defining a row (``glue_task`` aside).
        tasks: the task columns, in the paper's order.
    """

    runs: pd.DataFrame
    cells: pd.DataFrame
    rows: pd.DataFrame
    keys: tuple[str, ...]
    tasks: tuple[str, ...]

    def to_markdown(self, *, digits: int = 2) -> str:
        """A Markdown table: one row per key, ours (mean ± std, n) then the paper's row."""
        if self.rows.empty:
            return "_no finished text-classification (GLUE) runs_\n"
        fmt = f"{{:.{digits}f}}"

        def pm(m: float, s: float, n: float) -> str:
            if m != m:
                return ""
            return fmt.format(m) + ("" if s != s else " ± " + fmt.format(s)) + f" (n={int(n)})"

        def paper(v: float) -> str:
            return "" if v != v else f"{v:.1f}"

        header = [
            *self.keys,
            *self.tasks,
            "avg",
            "paper",
            *(f"paper {t}" for t in self.tasks),
            "paper avg",
        ]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for _, row in self.rows.iterrows():
            cells = [str(row[k]) for k in self.keys]
            cells += [pm(row[f"{t}_mean"], row[f"{t}_std"], row[f"{t}_n"]) for t in self.tasks]
            cells += [
                "" if row["avg"] != row["avg"] else fmt.format(row["avg"]),
                str(row["paper"] or ""),
            ]
            cells += [paper(row[f"paper_{t}"]) for t in self.tasks] + [paper(row["paper_avg"])]
            lines.append("| " + " | ".join(cells) + " |")
        models = ", ".join(sorted(self.runs["model"].astype(str).unique()))
        note = (
            f"\nOurs: {models}; accuracy % on each GLUE dev set (MNLI: matched), mean ± std over seeds "
            "(n runs); avg over the tasks present in the row. The paper's (Table 4): BERT-base, dev "
            'accuracy %; its row "BERT" is plain fine-tuning (method none), "BERT + BSS" is method bss; '
            "paper avg over the same tasks (all four: the paper's own average). MRPC F1 is in cells.csv.\n"
        )
        return "\n".join(lines) + "\n" + note

    def to_json(self, path: str | Path) -> Path:
        """Write the keys, task columns, rows, cells and runs as JSON."""
        return write_json(
            path,
            {
                "keys": list(self.keys),
                "tasks": list(self.tasks),
                "rows": self.rows.to_dict(orient="records"),
                "cells": self.cells.to_dict(orient="records"),
                "runs": self.runs.to_dict(orient="records"),
            },
        )


def _keys(runs: pd.DataFrame) -> list[str]:
    """model, method, rate (when it varies or is not 100 %), then every other column that varies."""
    rates = runs["rate"].astype(str)
    keys = ["model", "method"] + (
        ["rate"] if rates.nunique() > 1 or (rates != "100%").any() else []
    )
    candidates = [c for c in runs.columns if c not in _NOT_KEYS and c not in _VALUES]
    # a hyperparameter is empty for methods without its term: only values that differ count
    return keys + [c for c in candidates if runs[c].dropna().astype(str).nunique() > 1]


def table4(root: str | Path) -> Table4:
    """Aggregate the text-classification runs under ``root`` (see the module docstring).

    Example:
        >>> print(table4("runs/").to_markdown())  # doctest: +SKIP
    """
    runs = collect_glue(root)
    tasks = tuple(_task_order(runs["glue_task"] if not runs.empty else []))
    if runs.empty:
        return Table4(runs, pd.DataFrame(), pd.DataFrame(), ("model", "method"), tasks)
    keys = _keys(runs)
    cells = (
        runs.groupby([*keys, "glue_task"], sort=False, dropna=False)
        .agg(
            n=("accuracy", "size"),
            accuracy_mean=("accuracy", "mean"),
            accuracy_std=("accuracy", "std"),
            f1_mean=("f1", "mean"),
            f1_std=("f1", "std"),
        )
        .reset_index()
    )
    cells["paper_accuracy"] = [
        PAPER_TABLE4.get(str(m), {}).get(str(t), np.nan)
        for m, t in zip(cells["method"], cells["glue_task"])
    ]
    order = {t: i for i, t in enumerate(tasks)}

    def sort_key(col: pd.Series) -> pd.Series:  # the paper's task order; plain fine-tuning first
        if col.name == "glue_task":
            return col.map(order)
        return col.astype(str).where(col != "none", "") if col.name == "method" else col.astype(str)

    cells = cells.sort_values([*keys, "glue_task"], key=sort_key, kind="stable").reset_index(
        drop=True
    )
    rows: list[dict[str, Any]] = []
    for group_key, group in cells.groupby(keys, sort=False, dropna=False):
        key = group_key if isinstance(group_key, tuple) else (group_key,)
        row: dict[str, Any] = dict(zip(keys, key))
        by_task = {str(r["glue_task"]): r for _, r in group.iterrows()}
        for t in tasks:
            r = by_task.get(t)
            row.update(
                {
                    f"{t}_mean": np.nan if r is None else r["accuracy_mean"],
                    f"{t}_std": np.nan if r is None else r["accuracy_std"],
                    f"{t}_n": 0 if r is None else int(r["n"]),
                }
            )
        present = [t for t in tasks if t in by_task]
        method = str(row["method"])
        row.update(
            avg=float(np.mean([row[f"{t}_mean"] for t in present])),
            tasks=len(present),
            paper=PAPER_ROWS.get(method, ""),
        )
        row.update({f"paper_{t}": PAPER_TABLE4.get(method, {}).get(t, np.nan) for t in tasks})
        row["paper_avg"] = _paper_average(method, present)
        rows.append(row)
    return Table4(runs, cells, pd.DataFrame(rows), tuple(keys), tasks)
