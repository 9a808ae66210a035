"""Collect finished runs into tables: mean ± std per cell, side by side with the paper's Table 2.

A *cell* is everything that defines an experiment except its seed: dataset, method, rate,
and any other config field or hyperparameter that varies across the collected runs (a BSS
``k`` sweep gives one cell per ``k``). Accuracies are in percent; the standard deviation is
the sample one (``ddof=1``) over the seeds, empty for a single run.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .._io import write_json
from .._results import TidyResult
from .config import OPERATIONAL_KEYS
from .rundir import iter_run_records

__all__ = [
    "collect_runs",
    "sweep_table",
    "SweepTable",
    "paper_table2",
    "PAPER_DATASETS",
    "PAPER_METHODS",
]

#: data spec names -> the dataset names of ``table2_top1.csv``
PAPER_DATASETS = {
    "stanford-dogs": "stanford_dogs",
    "cub200": "cub200",
    "stanford-cars": "stanford_cars",
    "oxford-pets": "oxford_pets",
    "fgvc-aircraft": "fgvc_aircraft",
}
#: method specs -> the method names of ``table2_top1.csv``
PAPER_METHODS = {
    "l2": "L2",
    "l2+bss": "L2+BSS",
    "l2-sp": "L2-SP",
    "l2-sp+bss": "L2-SP+BSS",
    "delta": "DELTA",
    "delta+bss": "DELTA+BSS",
}
#: Config fields that never make a cell: the seeds and data (a cell's rows vary them) and how a
#: run was executed or logged.
_IGNORED = {"seed", "data_seed", "data", *OPERATIONAL_KEYS}


def percent(value: Any) -> float:
    """An accuracy in [0, 1] (or None) as percent (NaN)."""
    return 100.0 * float(value) if value is not None else np.nan


class RunsAndCells(TidyResult):
    """What the run tables (``SweepTable``, ``Table3``, ``Table4``) share: ``runs`` (one row per
    run) and ``cells`` (one row per aggregated cell), written by :meth:`to_csv`."""

    runs: pd.DataFrame
    cells: pd.DataFrame
    #: ``to_frame()``: one row per aggregated cell
    main_table: ClassVar[str] = "cells"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``runs`` and ``cells``."""
        return {"runs": self.runs, "cells": self.cells}

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``runs.csv`` and ``cells.csv`` into ``directory``."""
        from .._results import write_tables_csv

        return write_tables_csv(directory, self.tables())


def paper_table2() -> pd.DataFrame:
    """The paper's Table 2 (top-1 %, mean and std over five runs), shipped as package data.

    Columns: ``dataset``, ``method``, ``sampling_rate_percent``, ``top1_mean``, ``top1_std``.
    """
    path = resources.files("spectral_probe") / "resources" / "table2_top1.csv"
    with path.open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh)


def _rate_percent(rate: str) -> float:
    if isinstance(rate, str) and rate.endswith("%"):
        return float(Fraction(rate[:-1]))
    return float("nan")


def collect_runs(root: str | Path) -> pd.DataFrame:
    """One row per run directory under ``root`` (any depth) that has a ``final.json``.

    Columns: ``run_id``, ``path``, ``status``, ``model``, ``dataset`` (the data spec's name),
    ``method``, ``rate``, ``rate_percent``, ``seed``, every other config field, one
    ``hp.<term>.<name>`` column per hyperparameter, ``test_accuracy`` and ``val_accuracy``
    (percent), ``best_iteration``, ``train_seconds``.
    """
    rows: list[dict[str, Any]] = []
    for run, meta, final in iter_run_records(root):
        cfg = meta.get("config", {})
        row: dict[str, Any] = {"run_id": run.name, "path": str(run), "status": final.get("status")}
        row.update({k: v for k, v in cfg.items() if not isinstance(v, dict)})
        row["dataset"] = str(cfg.get("data", "")).partition(":")[0]
        row["rate_percent"] = _rate_percent(cfg.get("rate", ""))
        for key, value in (cfg.get("hp") or {}).items():
            row[f"hp.{key}"] = value
        test = (final.get("evals") or {}).get("test", {}).get("accuracy")
        val = (final.get("val") or {}).get("accuracy")
        row["test_accuracy"] = percent(test)
        row["val_accuracy"] = percent(val)
        row["best_iteration"] = final.get("best_iteration")
        row["train_seconds"] = (final.get("timings") or {}).get("train_seconds")
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SweepTable(RunsAndCells):
    """Aggregated runs (what ``spectral-probe sweep-table`` prints).

    Attributes:
        runs: :func:`collect_runs` of the finished runs.
        cells: one row per cell: the key columns, ``n``, ``mean``, ``std`` (test top-1 %),
            ``val_mean``, and with ``paper=True`` ``paper_mean``, ``paper_std``.
        keys: the key columns defining a cell.
        paper: whether the paper's numbers are joined.
    """

    runs: pd.DataFrame
    cells: pd.DataFrame
    keys: tuple[str, ...]
    paper: bool = False

    def to_markdown(self, *, digits: int = 2) -> str:
        """Rows = cells without the rate, columns = rates, ``mean ± std`` (and the paper's)."""
        if self.cells.empty:
            return "_no finished runs_\n"
        df = self.cells.copy()
        fmt = f"{{:.{digits}f}}"

        def pm(m: float, s: float) -> str:
            if m != m:
                return ""
            return fmt.format(m) + ("" if s != s else " ± " + fmt.format(s))

        df["value"] = [pm(m, s) for m, s in zip(df["mean"], df["std"])]
        if self.paper:
            df["paper_value"] = [pm(m, s) for m, s in zip(df["paper_mean"], df["paper_std"])]
        row_keys = [k for k in self.keys if k != "rate"]
        rates = sorted(df["rate"].unique(), key=lambda r: (_rate_percent(r), str(r)))
        header = [*row_keys]
        for r in rates:
            header.append(str(r))
            if self.paper:
                header.append(f"{r} (paper)")
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for group_key, group in df.groupby(row_keys, sort=False, dropna=False):
            key = group_key if isinstance(group_key, tuple) else (group_key,)
            cells = [str(k) for k in key]
            by_rate = {r: g.iloc[0] for r, g in group.groupby("rate")}
            for r in rates:
                row = by_rate.get(r)
                cells.append("" if row is None else f"{row['value']} (n={int(row['n'])})")
                if self.paper:
                    cells.append("" if row is None else row["paper_value"])
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def to_json(self, path: str | Path) -> Path:
        """Write the cells (and keys) as JSON."""
        return write_json(
            path, {"keys": list(self.keys), "cells": self.cells.to_dict(orient="records")}
        )


def sweep_table(root: str | Path, *, paper: bool = False) -> SweepTable:
    """Aggregate the finished runs under ``root`` to mean ± std per cell (see module docs)."""
    runs = collect_runs(root)
    if not runs.empty:
        runs = runs[runs["status"] == "finished"].reset_index(drop=True)
    if runs.empty:
        return SweepTable(runs, pd.DataFrame(), ("dataset", "method", "rate"), paper)
    fixed = ["model", "dataset", "method", "rate"]
    config_cols = [
        c
        for c in runs.columns
        if c
        not in {
            "run_id",
            "path",
            "status",
            "test_accuracy",
            "val_accuracy",
            "best_iteration",
            "train_seconds",
            "rate_percent",
            *_IGNORED,
        }
    ]
    # a hyperparameter is empty for methods without its term: only values that differ count
    varying = [
        c for c in config_cols if c not in fixed and runs[c].dropna().astype(str).nunique() > 1
    ]
    keys = [k for k in fixed if k != "model" or runs["model"].nunique() > 1] + varying
    grouped = runs.groupby(keys, sort=False, dropna=False)
    cells = grouped.agg(
        n=("test_accuracy", "size"),
        mean=("test_accuracy", "mean"),
        std=("test_accuracy", "std"),
        val_mean=("val_accuracy", "mean"),
    ).reset_index()
    cells["rate_percent"] = cells["rate"].map(_rate_percent)
    if paper:
        ref = paper_table2()
        cells["paper_dataset"] = cells["dataset"].map(PAPER_DATASETS)
        cells["paper_method"] = cells["method"].map(PAPER_METHODS)
        cells = cells.merge(
            ref.rename(
                columns={
                    "dataset": "paper_dataset",
                    "method": "paper_method",
                    "sampling_rate_percent": "rate_percent",
                    "top1_mean": "paper_mean",
                    "top1_std": "paper_std",
                }
            ),
            on=["paper_dataset", "paper_method", "rate_percent"],
            how="left",
        ).drop(columns=["paper_dataset", "paper_method"])
    return SweepTable(runs, cells, tuple(keys), paper)
