"""Helpers for tests that drive the Typer app."""

from __future__ import annotations

from typing import Any


def one_line_error(result: Any) -> str:
    """Assert a CLI result is one ``error:`` line with exit status 2; return that line."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]
