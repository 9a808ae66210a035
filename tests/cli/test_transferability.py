"""``spectral-probe rank-models`` through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app

from spectral_probe.transferability import SCORES

SMALL = [
    "--data",
    "digits",
    "--split",
    "test",
    "--max-samples",
    "60",
    "--batch-size",
    "30",
    "--image-size",
    "32",
]
SMALL += ["--device", "cpu", "-q"]
MODELS = ["bundled:efficientnet_lite0", "timm:tf_efficientnet_lite0"]  # pre-trained and random init

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _invoke(runner: Any, args: list[str]) -> Any:
    return runner.invoke(app, args, catch_exceptions=False)


def test_ranks_a_pretrained_and_a_random_model_end_to_end(runner: Any, tmp_path: Path) -> None:
    out = tmp_path / "rank"
    res = _invoke(runner, ["rank-models", *MODELS, *SMALL, "--out", str(out), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    table = pd.read_csv(out / "ranking.csv")
    assert table["model"].tolist() == MODELS
    assert table["feature_dim"].tolist() == [1280, 1280] and table["n_samples"].tolist() == [60, 60]
    for name in SCORES:
        assert {name, f"{name}_rank", f"{name}_seconds"} <= set(table.columns)
    # the random-init model has no source head: LEEP and NCE skipped, with the reason
    random = payload["table"][1]
    assert random["leep"] is None and random["nce"] is None and random["source_head"] is False
    reasons = {r["skipped"] for r in payload["scores"] if r["model"] == MODELS[1] and r["skipped"]}
    assert len(reasons) == 1 and "randomly initialised" in reasons.pop()
    pretrained = payload["table"][0]
    assert -10 < pretrained["leep"] < 0 and pretrained["leep_rank"] == 1
    # consensus = mean of the ranks a model has
    ranks = [pretrained[f"{n}_rank"] for n in SCORES]
    assert pretrained["consensus_rank"] == pytest.approx(sum(ranks) / len(ranks))
    assert sorted({*table["logme_rank"]}) == [1, 2]
    assert (out / "figures" / "ranking.png").stat().st_size > 0
    config = json.loads((out / "config.json").read_text())
    assert config["command"] == "rank-models" and config["options"]["score"] == list(SCORES)
    assert len(pd.read_csv(out / "scores.csv")) == 2 * len(SCORES)


def test_summary_and_csv_with_chosen_scores(runner: Any) -> None:
    res = _invoke(
        runner, ["rank-models", MODELS[0], *SMALL, "--score", "logme", "--score", "H-score"]
    )
    assert res.exit_code == 0, res.output
    assert (
        "ranks (1 = best)" in res.stdout
        and "LogME" in res.stdout
        and "bundled:efficientnet_lite0" in res.stdout
    )
    res = _invoke(runner, ["rank-models", MODELS[0], *SMALL, "--score", "sfda", "--csv"])
    frame = pd.read_csv(pd.io.common.StringIO(res.stdout))
    assert (
        frame["sfda_rank"].tolist() == [1] and 0 < frame["sfda"].iloc[0] <= 1
    )  # 1.0 when D > N: see docs


def test_unknown_score_is_one_line(runner: Any) -> None:
    line = one_line_error(_invoke(runner, ["rank-models", MODELS[0], *SMALL, "--score", "logmee"]))
    assert "unknown transferability score 'logmee'" in line and "logme" in line


def test_bad_data_spec_is_one_line(runner: Any) -> None:
    line = one_line_error(
        _invoke(runner, ["rank-models", MODELS[0], "--data", "no-such-data", "-q"])
    )
    assert "no-such-data" in line


def test_the_help_names_every_registered_score() -> None:
    from spectral_probe_cli.transferability import _SCORE_HELP

    assert _SCORE_HELP.split(", ") == list(SCORES)
