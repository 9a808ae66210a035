"""``spectral-probe reproduce-page`` (the numbers are tested in tests/report/test_reproduction.py)."""

from __future__ import annotations

from spectral_probe_cli.main import app


def test_cli_writes_the_page(tmp_path, runner):
    result = runner.invoke(
        app, ["reproduce-page", str(tmp_path / "none"), "--out", str(tmp_path / "docs")]
    )
    assert result.exit_code == 0, result.output
    assert "Figure 3d: not yet run" in result.output
    assert (tmp_path / "docs" / "reproduction.md").is_file()
    assert (tmp_path / "docs" / "reproduction" / "numbers.json").is_file()
