"""The report's output folder: fresh, resumed after an interruption, or overwritten on request."""

from __future__ import annotations

import shutil
from pathlib import Path

from .._io import check_writable_dir, write_json
from ..errors import OutputError
from .settings import ReportSettings

__all__ = ["prepare_output", "MARKER", "REPORT_FILES"]

#: Written first: marks the folder as a (possibly unfinished) report.
MARKER = "report-settings.json"
#: What a finished report consists of (removed by ``overwrite``; pilots are kept and reused).
REPORT_FILES = ("index.html", "report.md", "report.json", "figures")


def prepare_output(out: str | Path, settings: ReportSettings, *, overwrite: bool = False) -> str:
    """Make ``out`` ready for a report; return ``"new"``, ``"resume"`` or ``"overwrite"``.

    * a missing or empty folder: ``new``;
    * a folder holding an unfinished report (the marker, no ``report.json``): ``resume``, its
      finished pilot runs are reused;
    * anything else (a finished report, unrelated files) is refused unless ``overwrite``, which
      removes the previous report's files but keeps ``pilots/`` for reuse.
    """
    out = check_writable_dir(out)
    state = "new"
    if out.exists() and any(out.iterdir()):
        unfinished = (out / MARKER).is_file() and not (out / "report.json").exists()
        if unfinished:
            state = "resume"
        elif not overwrite:
            what = "a finished report" if (out / "report.json").exists() else "other files"
            raise OutputError(
                f"expected a new or empty --out folder, found {what} in {out}; pass --overwrite to replace it"
            )
        else:
            state = "overwrite"
            for name in REPORT_FILES:
                path = out / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
    write_json(out / MARKER, settings.to_dict())
    return state
