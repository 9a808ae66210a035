"""Plumbing shared by the official-layout readers: list files, ``.mat`` files, roots."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError
from ._base import require_file

__all__ = ["read_lines", "read_columns", "load_mat", "locate_root", "check_first_image"]


def read_lines(path: Path, what: str) -> list[str]:
    """Non-blank, non-``#`` lines of a text list file, stripped (BOM-tolerant)."""
    require_file(path, what)
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        return [s for s in (line.strip() for line in fh) if s and not s.startswith("#")]


def read_columns(path: Path, what: str, n: int, *, maxsplit: int | None = None) -> list[list[str]]:
    """Whitespace-separated rows with at least ``n`` fields (``maxsplit`` keeps the rest whole).

    Raises:
        DataError: naming the file, the line and the number of fields expected and found.
    """
    rows = []
    for i, line in enumerate(read_lines(path, what), start=1):
        parts = line.split(None, maxsplit if maxsplit is not None else -1)
        if len(parts) < n:
            raise DataError(
                f"expected {n} whitespace-separated fields per line in {path} (line {i}), "
                f"found {len(parts)}: {line[:60]!r}"
            )
        rows.append(parts)
    return rows


def load_mat(path: Path, what: str, keys: Sequence[str]) -> dict[str, Any]:
    """``scipy.io.loadmat(path, squeeze_me=True)``, checked for ``keys``."""
    import scipy.io

    require_file(path, what)
    try:
        mat = scipy.io.loadmat(str(path), squeeze_me=True)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise DataError(f"expected a MATLAB .mat file at {path}, found: {exc}") from None
    missing = [k for k in keys if k not in mat]
    if missing:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"expected variables {list(keys)} in {path}, found {found}")
    return mat


def locate_root(root: Path | None, name: str, marker: str, subdirs: Sequence[str]) -> Path:
    """The folder holding ``marker``: ``root`` itself or ``root/<subdir>`` for ``subdirs``.

    Lets a spec name either the dataset folder or the folder it was extracted into.
    """
    if root is None:  # the spec parser requires a root; this guards direct calls
        raise DataError(f"expected a root directory for {name}, found none")
    for base in [root, *(root / s for s in subdirs)]:
        if (base / marker).exists():
            return base
    looked = ", ".join(str(b / marker) for b in [root, *(root / s for s in subdirs)])
    raise DataError(f"expected the {name} file {marker} at one of: {looked}; found none")


def check_first_image(paths: Sequence[str], name: str, list_file: Path) -> None:
    """Catch a wrong images folder early by checking that the first listed file exists.

    Only one file is checked, so that loading a list of thousands of images stays fast;
    every other file is opened when it is indexed.
    """
    if paths and not Path(paths[0]).is_file():
        raise DataError(
            f"expected the {name} image {paths[0]} (first entry of {list_file.name}), found nothing"
        )
