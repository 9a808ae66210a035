"""Shared plumbing of result objects: JSON/CSV writing of tidy tables."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import atomic_write_text, write_json

__all__ = ["write_tables_csv", "write_result_json", "records"]


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts (NaN becomes ``None`` when serialised)."""
    return df.to_dict(orient="records")


def write_tables_csv(directory: str | Path, tables: dict[str, pd.DataFrame]) -> list[Path]:
    """Write each table as ``directory/NAME.csv`` atomically; return the paths."""
    directory = Path(directory)
    paths = []
    for name, df in tables.items():
        buf = io.StringIO()
        df.to_csv(buf, index=False)
        paths.append(atomic_write_text(directory / f"{name}.csv", buf.getvalue()))
    return paths


def write_result_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a result payload as strict JSON (NaN -> null) atomically."""
    return write_json(path, payload)
