"""The documentation site builds with warnings as errors (what ``make docs`` runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(
    shutil.which("mkdocs") is None and not (Path(sys.executable).parent / "mkdocs").exists(),
    reason="mkdocs not installed (pip install 'spectral-probe[docs]')",
)
def test_docs_build_strict(tmp_path):
    mkdocs = Path(sys.executable).parent / "mkdocs"
    cmd = [
        str(mkdocs) if mkdocs.exists() else "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        str(tmp_path / "site"),
    ]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    html = (tmp_path / "site" / "cli" / "index.html").read_text()
    for command in ("compare-weights", "feature-spectrum", "finetune", "report", "demo"):
        assert f"spectral-probe {command}" in html  # the CLI reference was generated
    assert (tmp_path / "site" / "report" / "index.html").is_file()
