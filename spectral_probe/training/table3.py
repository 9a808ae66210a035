"""The paper's Table 3 view: task A / task B / average accuracy of permuted-pixel runs.

Collects the finished task-B runs of the permuted protocol
(:mod:`~spectral_probe.training.permuted`) under a folder, one row per run (seed), and
aggregates them per cell (data set, method, rate, and any hyperparameter that varies) as
mean ± sample standard deviation over the seeds, beside the paper's numbers
(:data:`PAPER_TABLE3`: permuted **MNIST**, EWC vs EWC + BSS). Accuracies are in percent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import write_json
from .aggregate import RunsAndCells, percent
from .rundir import iter_run_records

__all__ = ["PAPER_TABLE3", "collect_permuted", "Table3", "table3"]

#: Table 3 of the paper (permuted MNIST): method -> (task A, task B, average), top-1 %
PAPER_TABLE3: dict[str, tuple[float, float, float]] = {
    "ewc": (96.60, 97.42, 97.01),
    "ewc+bss": (96.46, 98.04, 97.25),
}
_METRICS = ("task_a", "task_b", "average")


def collect_permuted(root: str | Path) -> pd.DataFrame:
    """One row per finished task-B permuted run under ``root`` (any depth).

    Columns: ``run_id``, ``path``, ``dataset``, ``method``, ``rate``, ``seed``, one
    ``hp.<term>.<name>`` column per hyperparameter, ``task_a``, ``task_b``, ``average``
    (percent, after task B), ``task_a_before_b`` (task A's own run, when found),
    ``train_seconds``.
    """
    rows: list[dict[str, Any]] = []
    for run, meta, final in iter_run_records(root):
        cfg = meta.get("config") or {}
        if cfg.get("task") != "permuted" or (meta.get("data") or {}).get("phase") != "B":
            continue
        if final.get("status") != "finished":
            continue
        evals = final.get("evals") or {}
        a, b = (
            percent((evals.get("task_a") or {}).get("accuracy")),
            percent((evals.get("test") or {}).get("accuracy")),
        )
        row: dict[str, Any] = {
            "run_id": run.name,
            "path": str(run),
            "dataset": str(cfg.get("data", "")).partition(":")[0],
            "method": cfg.get("method"),
            "rate": cfg.get("rate"),
            "seed": cfg.get("seed"),
        }
        row.update({f"hp.{k}": v for k, v in (cfg.get("hp") or {}).items()})
        row.update(
            task_a=a,
            task_b=b,
            average=(a + b) / 2,
            task_a_before_b=_task_a_before(cfg.get("model", "")),
            train_seconds=(final.get("timings") or {}).get("train_seconds"),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def _task_a_before(model: str) -> float:
    """Task A's test accuracy at the end of its own run (the checkpoint's run directory)."""
    try:
        final = json.loads((Path(model).parent / "final.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, TypeError):
        return np.nan
    return percent(((final.get("evals") or {}).get("test") or {}).get("accuracy"))


@dataclass(frozen=True)
class Table3(RunsAndCells):
    """Aggregated permuted-pixel runs, Table-3 style.

    Attributes:
        runs: :func:`collect_permuted`, one row per run (seed).
        cells: one row per cell: the key columns, ``n``, and ``<metric>_mean``/``<metric>_std``
            for ``task_a``, ``task_b``, ``average`` (and ``task_a_before_b``); with the paper's
            numbers ``paper_task_a``, ``paper_task_b``, ``paper_average`` (methods ``ewc`` and
            ``ewc+bss``).
        keys: the columns defining a cell.
    """

    runs: pd.DataFrame
    cells: pd.DataFrame
    keys: tuple[str, ...]

    def to_markdown(self, *, digits: int = 2) -> str:
        """A Markdown table: one row per cell, ours (mean ± std, n) beside the paper's."""
        if self.cells.empty:
            return "_no finished permuted-pixel task-B runs_\n"
        fmt = f"{{:.{digits}f}}"

        def pm(m: float, s: float) -> str:
            if m != m:
                return ""
            return fmt.format(m) + ("" if s != s else " ± " + fmt.format(s))

        header = [
            *self.keys,
            "n",
            "task A",
            "task B",
            "avg",
            "paper task A",
            "paper task B",
            "paper avg",
        ]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for _, row in self.cells.iterrows():
            cells = [str(row[k]) for k in self.keys] + [str(int(row["n"]))]
            cells += [pm(row[f"{m}_mean"], row[f"{m}_std"]) for m in _METRICS]
            cells += [
                "" if row[f"paper_{m}"] != row[f"paper_{m}"] else fmt.format(row[f"paper_{m}"])
                for m in _METRICS
            ]
            lines.append("| " + " | ".join(cells) + " |")
        datasets = ", ".join(sorted(self.cells["dataset"].astype(str).unique()))
        note = (
            f"\nOurs: permuted {datasets}; the paper's: permuted MNIST (Table 3). "
            "Top-1 % on each task's test set after training on task B; mean ± std over seeds.\n"
        )
        return "\n".join(lines) + "\n" + note

    def to_json(self, path: str | Path) -> Path:
        """Write the keys, cells and runs as JSON."""
        return write_json(
            path,
            {
                "keys": list(self.keys),
                "cells": self.cells.to_dict(orient="records"),
                "runs": self.runs.to_dict(orient="records"),
            },
        )


def table3(root: str | Path) -> Table3:
    """Aggregate the permuted-pixel task-B runs under ``root`` (see the module docstring).

    Example:
        >>> print(table3("runs/").to_markdown())  # doctest: +SKIP
    """
    runs = collect_permuted(root)
    if runs.empty:
        return Table3(runs, pd.DataFrame(), ("dataset", "method"))
    fixed = ["dataset", "method", "rate"]
    hp_cols = [c for c in runs.columns if c.startswith("hp.")]
    varying = [c for c in hp_cols if runs[c].dropna().astype(str).nunique() > 1]
    keys = [k for k in fixed if k != "rate" or runs["rate"].nunique() > 1] + varying
    aggs: dict[str, tuple[str, str]] = {"n": ("task_b", "size")}
    for m in (*_METRICS, "task_a_before_b"):
        aggs[f"{m}_mean"] = (m, "mean")
        aggs[f"{m}_std"] = (m, "std")
    cells = runs.groupby(keys, sort=False, dropna=False).agg(**aggs).reset_index()
    # sorted as text: rates may mix forms ("15%", 0.3, 30 per class) that do not compare
    cells = cells.sort_values(keys, key=lambda col: col.astype(str), kind="stable").reset_index(
        drop=True
    )
    for i, m in enumerate(_METRICS):
        cells[f"paper_{m}"] = cells["method"].map(
            lambda k, i=i: PAPER_TABLE3.get(str(k), (np.nan,) * 3)[i]
        )
    return Table3(runs, cells, tuple(keys))
