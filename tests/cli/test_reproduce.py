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


def test_a_page_from_runs_ships_its_data_and_regenerates_from_it(tmp_path, runner):
    out = tmp_path / "docs"
    result = runner.invoke(app, ["reproduce-page", str(tmp_path / "none"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out / "reproduction" / "data" / "none.json"
    assert data.is_file()
    page = (out / "reproduction.md").read_text()
    assert f"reproduce-page --from {data} --out {out}" in page
    again = runner.invoke(app, ["reproduce-page", "--from", str(data), "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert (out / "reproduction.md").read_text() == page


def test_both_or_neither_source_is_refused(tmp_path, runner):
    both = runner.invoke(app, ["reproduce-page", str(tmp_path), "--from", str(tmp_path / "d.json")])
    assert both.exit_code == 2 and "found both" in both.output
