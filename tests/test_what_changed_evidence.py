"""docs/what-changed.md's evidence tables are what scripts/what_changed_evidence.py prints from
the data committed beside the page (rerun ``summarise`` and paste when this fails)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_page_tables_come_from_the_committed_data() -> None:
    spec = importlib.util.spec_from_file_location(
        "what_changed_evidence", ROOT / "scripts" / "what_changed_evidence.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        module.summarise(ROOT / "docs" / "what-changed" / "data")
    rows = [line for line in out.getvalue().splitlines() if line.startswith("|")]
    assert len(rows) > 40
    page = (ROOT / "docs" / "what-changed.md").read_text(encoding="utf-8")
    missing = [row for row in rows if row not in page]
    assert not missing, missing[:3]
    for verdict in ("| LoRA r=8 |", "| LoRA r=64 |", "| rsLoRA r=64 |"):
        assert any(
            r.startswith(verdict)
            and r.split("|")[-2].strip().split(" (")[0]
            in {"reproduced", "contradicted", "inconclusive"}
            for r in rows
        )
