"""Shared plumbing of result objects: JSON/CSV/Parquet writing of tidy tables, ``to_frame``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from ._io import atomic_write_bytes, atomic_write_text, write_json
from .errors import ConfigError

__all__ = ["TidyResult", "write_tables_csv", "write_tables_parquet", "write_result_json", "records"]


class TidyResult:
    """What every result shares: its tidy tables by name, as DataFrames or Parquet files.

    A subclass names its tables in :meth:`tables` and its main one in :attr:`main_table`.
    """

    #: the table :meth:`to_frame` returns by default
    main_table: ClassVar[str] = ""

    def tables(self) -> dict[str, pd.DataFrame]:
        """The result's tidy tables by name (the files of ``to_csv``, without ``.csv``)."""
        raise NotImplementedError

    def to_frame(self, table: str | None = None) -> pd.DataFrame:
        """A copy of one tidy table (default: :attr:`main_table`), e.g. one row per layer.

        Raises:
            ConfigError: ``table`` is not one of :meth:`tables`.
        """
        tables = self.tables()
        name = self.main_table if table is None else table
        if name not in tables:
            raise ConfigError(f"expected a table from {list(tables)}, found {name!r}")
        return tables[name].copy()

    def to_parquet(self, directory: str | Path) -> list[Path]:
        """Write each table as ``directory/NAME.parquet`` atomically (needs ``pyarrow``).

        Raises:
            MissingExtraError: pyarrow is not installed (``pip install 'spectral-probe[parquet]'``).
        """
        return write_tables_parquet(directory, self.tables())


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


def write_tables_parquet(directory: str | Path, tables: dict[str, pd.DataFrame]) -> list[Path]:
    """Write each table as ``directory/NAME.parquet`` atomically (pyarrow); return the paths."""
    from ._extras import require_extra

    require_extra("pyarrow", "parquet", "Parquet output")
    directory = Path(directory)
    paths = []
    for name, df in tables.items():
        buf = io.BytesIO()
        df.to_parquet(buf, engine="pyarrow", index=False)
        paths.append(atomic_write_bytes(directory / f"{name}.parquet", buf.getvalue()))
    return paths


def write_result_json(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a result payload as strict JSON (NaN -> null) atomically."""
    return write_json(path, payload)
