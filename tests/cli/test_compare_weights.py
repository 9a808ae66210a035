"""``spectral-probe compare-weights`` (more in test_weights.py, test_weight_files.py,
test_compare_*.py): ``--esd`` end to end on the bundled models."""

from __future__ import annotations

import pandas as pd
from spectral_probe_cli.main import app


def _invoke(runner, args):
    return runner.invoke(app, args, catch_exceptions=False)


def test_compare_weights_esd(runner, perturbed_lite0, tmp_path):
    out = tmp_path / "cw"
    args = [
        "compare-weights",
        "bundled:efficientnet_lite0",
        str(perturbed_lite0),
        "--esd",
        "-q",
        "--include",
        "blocks.6",
        "--out",
        str(out),
    ]
    res = _invoke(runner, args)
    assert res.exit_code == 0, res.output
    assert "A: mean α" in res.stderr and "B: mean α" in res.stderr
    summary = pd.read_csv(out / "summary.csv")
    assert (summary["delta_alpha"] == summary["alpha_b"] - summary["alpha_a"]).all()
    esd = pd.read_csv(out / "esd.csv")
    assert sorted(esd["model"].unique()) == ["a", "b"] and len(esd) == 2 * len(summary)
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"alpha_profile.png", "esd_fits.png"} <= figures
