"""``spectral-probe validate``: the retrospective, and bad input as one line."""

from __future__ import annotations

import json

from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app


def test_retrospective_prints_and_writes(runner, tmp_path):
    out = tmp_path / "retro"
    result = runner.invoke(app, ["validate", "--retrospective", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "always DELTA+BSS" in result.output
    data = json.loads((out / "results.json").read_text())
    assert data["best_policy"] == "always DELTA+BSS"
    assert {"regret", "max_regret", "share_within"} <= set(data["policies"][0])
    assert (out / "policies.csv").is_file()
    js = runner.invoke(app, ["validate", "--retrospective", "--json"])
    assert json.loads(js.stdout)["policies"][0]["policy"] == "always DELTA+BSS"
