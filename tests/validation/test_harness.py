"""The validation harness end to end on a tiny suite: cells, restart, outputs, scores."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from spectral_probe.report import ReportSettings, pilot_configs
from spectral_probe.validation.harness import full_cells, pilot_cells, run_suite, suite_sweep
from spectral_probe.validation.stats import kendall_tau

from .conftest import tiny_suite


def test_cells_are_the_reports_pilots_and_full_runs():
    suite = tiny_suite()
    task = suite.tasks[0]
    settings = ReportSettings(
        model=task.model,
        data=task.data,
        methods=suite.methods,
        rates=(task.rate,),
        seeds=suite.pilot_seeds,
        preset=suite.preset,
        iterations=suite.pilot_iterations,
        image_size=suite.image_size,
        val=suite.val,
        eval_max=suite.pilot_eval_max,
        device="cpu",
    )
    assert [c.run_id for c in pilot_cells(suite, task, "cpu")] == [
        c.run_id for c in pilot_configs(settings)
    ]
    full = full_cells(suite, task, "cpu")
    assert {c.method for c in full} == set(suite.methods) and all(c.val in (0, "0") for c in full)
    assert all(c.iterations == suite.full_iterations for c in full)
    sweep_ids = [c.run_id for c in suite_sweep(suite, "cpu").configs()]
    assert len(sweep_ids) == len(set(sweep_ids)) == 2 * (3 * 2 + 3 * 1)


def test_outputs(tiny_validation):
    _result, out = tiny_validation
    for name in (
        "results.json",
        "policies.csv",
        "signals.csv",
        "tasks.csv",
        "regrets.csv",
        "runs.csv",
        "summary.html",
        "summary.md",
        "figures/policy_regret.png",
        "figures/pilot_vs_full.png",
    ):
        assert (out / name).is_file(), name
    policies = pd.read_csv(out / "policies.csv")
    assert {"policy", "regret", "kendall_tau", "max_regret", "share_within"} <= set(
        policies.columns
    )
    assert {"advice", "best pilot", "always l2", "always l2+bss", "always l2-sp"} <= set(
        policies["policy"]
    )
    signals = pd.read_csv(out / "signals.csv")
    assert {"signal", "gain", "regret", "kendall_tau"} <= set(signals.columns)
    payload = json.loads((out / "results.json").read_text())
    assert payload["format"] == "spectral-probe-validation" and len(payload["tasks"]) == 2
    html = (out / "summary.html").read_text()
    assert html.count("data:image/png;base64,") == 2
    tasks = pd.read_csv(out / "tasks.csv")
    assert {"tail_energy", "top_alignment", "logme"} <= set(tasks.columns)
    assert tasks["logme"].notna().all()
    markdown = (out / "summary.md").read_text()
    assert "| advice |" in markdown and "| logme | gain_bss |" in markdown
    task_rows = [line for line in markdown.splitlines() if line.startswith("| tiny:")]
    assert len(task_rows) == 2 and all(" \\| digits \\| 50% |" in row for row in task_rows)
    header = next(line for line in markdown.splitlines() if line.startswith("| task |"))
    assert all(row.replace("\\|", "").count("|") == header.count("|") for row in task_rows)


def test_scores_recomputed_from_the_runs(tiny_validation):
    result, _ = tiny_validation
    runs, tasks = result.runs, result.tasks.set_index("task")
    assert (runs["status"] == "finished").all()
    for task, group in runs.groupby("task"):
        full = group[group["phase"] == "full"].groupby("method")["test_accuracy"].mean()
        pilot = group[group["phase"] == "pilot"].groupby("method")["val_accuracy"].mean()
        assert tasks.loc[task, "oracle"] == pytest.approx(full.max())
        regrets = result.regrets[result.regrets["task"] == task].set_index("policy")
        for method in full.index:
            assert regrets.loc[f"always {method}", "regret"] == pytest.approx(
                full.max() - full[method]
            )
        assert (
            regrets.loc["best pilot", "choice"] == pilot.idxmax()
            or pilot.max() == pilot[regrets.loc["best pilot", "choice"]]
        )
        ref = kendall_tau(pilot[full.index].to_numpy(), full.to_numpy())
        assert tasks.loc[task, "kendall_tau"] == pytest.approx(ref, nan_ok=True)
    mean = result.regrets.groupby("policy")["regret"].mean()
    pol = result.policies.set_index("policy")
    assert pol["regret"].to_dict() == pytest.approx(mean.to_dict())
    assert (pol["regret"] >= 0).all()


def test_restart_reruns_no_finished_cell(tiny_validation):
    _, out = tiny_validation
    before = {
        p.name: (p / "final.json").stat().st_mtime_ns
        for p in (out / "runs").iterdir()
        if p.is_dir()
    }
    report = run_suite(tiny_suite(), out, device="cpu")
    assert set(report.cells["status"]) == {"skipped"}
    after = {
        p.name: (p / "final.json").stat().st_mtime_ns
        for p in (out / "runs").iterdir()
        if p.is_dir()
    }
    assert after == before


def test_the_cpu_suite_is_sized_for_a_few_hours_and_loads_offline_specs():
    from spectral_probe.data import parse_data_spec
    from spectral_probe.report.settings import DEFAULT_METHODS
    from spectral_probe.validation.suites import CONFUSABLE_FASHION, get_suite

    suite = get_suite("cpu")
    assert len(suite.tasks) == 6
    assert CONFUSABLE_FASHION in {t.data for t in suite.tasks}
    assert parse_data_spec(CONFUSABLE_FASHION).classes == (
        "T-shirt/top",
        "Pullover",
        "Coat",
        "Shirt",
    )
    configs = suite_sweep(suite, "cpu").configs()
    assert len(configs) == len(suite.tasks) * len(DEFAULT_METHODS) * (3 + 3)
    assert len({c.run_id for c in configs}) == len(configs)
    iterations = sum(c.iterations for c in configs)
    assert iterations == len(suite.tasks) * len(DEFAULT_METHODS) * 3 * (150 + 300)
