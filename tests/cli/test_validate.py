"""``spectral-probe validate``: the retrospective, a tiny suite end to end, bad input as one line."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import training._tiny  # noqa: F401  (registers the test-only ``tiny`` model source)
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app

from spectral_probe.validation import Suite, Task, suites


def _tiny() -> Suite:
    return Suite(name="quick", tasks=(Task("tiny:cnn", "digits", "50%"),), methods=("l2", "l2+bss"),
                 image_size=8, pilot_iterations=4, pilot_seeds=(0, 1), val="20%", pilot_eval_max=60,
                 full_iterations=4, full_seeds=(0,), full_eval_max=60, spectrum_batches=1)  # fmt: skip


@pytest.fixture
def tiny_quick(monkeypatch):
    monkeypatch.setitem(suites.SUITES, "quick", _tiny)


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


def test_quick_end_to_end_and_restart(runner, tmp_path, tiny_quick):
    out = tmp_path / "val"
    result = runner.invoke(
        app, ["validate", "--quick", "--out", str(out), "--device", "cpu", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert "advice" in result.output and "always l2+bss" in result.output
    payload = json.loads((out / "results.json").read_text())
    assert {p["policy"] for p in payload["policies"]} >= {
        "advice",
        "best pilot",
        "always l2",
        "always l2+bss",
    }
    assert (out / "summary.html").is_file()
    stamps = {
        p.name: (p / "final.json").stat().st_mtime_ns
        for p in (out / "runs").iterdir()
        if p.is_dir()
    }
    assert len(stamps) == 2 * 2 + 2
    again = runner.invoke(
        app, ["validate", "--quick", "--out", str(out), "--device", "cpu", "--quiet"]
    )
    assert again.exit_code == 0, again.output
    assert stamps == {
        p.name: (p / "final.json").stat().st_mtime_ns
        for p in (out / "runs").iterdir()
        if p.is_dir()
    }


def test_method_adds_a_candidate_running_only_its_cells(runner, tmp_path, tiny_quick):
    out = tmp_path / "val"
    base = ["validate", "--quick", "--out", str(out), "--device", "cpu", "--quiet"]
    assert runner.invoke(app, base).exit_code == 0

    def stamps():
        return {
            p.name: (p / "final.json").stat().st_mtime_ns
            for p in (out / "runs").iterdir()
            if p.is_dir()
        }

    before = stamps()
    extra = ["--method", "l2", "--method", "l2+bss", "--method", "l2-sp"]
    result = runner.invoke(app, [*base, *extra])
    assert result.exit_code == 0, result.output
    after = stamps()
    assert {k: after[k] for k in before} == before  # the finished cells were reused
    assert len(after) == len(before) + 2 + 1  # l2-sp: two pilot seeds, one full run
    payload = json.loads((out / "results.json").read_text())
    assert "always l2-sp" in {p["policy"] for p in payload["policies"]}
    assert "--method l2-sp" in json.loads((out / "config.json").read_text())["commands"][0]


def test_method_twice_is_one_line(runner, tmp_path, tiny_quick):
    result = runner.invoke(
        app,
        ["validate", "--quick", "--out", str(tmp_path / "v"), "--method", "l2", "--method", "l2"],
    )
    assert "expected each --method once" in one_line_error(result)


def test_interrupted_cell_is_one_line(runner, tmp_path, tiny_quick, monkeypatch):
    from spectral_probe.training import sweep

    monkeypatch.setattr(
        sweep,
        "run_cell",
        lambda cfg, run_dir, imports=(): {
            "run_id": os.path.basename(run_dir),
            "status": "interrupted",
        },
    )
    result = runner.invoke(
        app, ["validate", "--quick", "--out", str(tmp_path / "v"), "--device", "cpu", "-q"]
    )
    line = one_line_error(result)
    assert "interrupted" in line and "re-run the same command" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--suite", "nope"], "expected a suite in"),
        (["--executor", "cloud"], "expected --executor in"),
        ([], "expected --out"),
    ],
)
def test_bad_input(runner, tmp_path, args, message):
    line = one_line_error(runner.invoke(app, ["validate", *args]))
    assert message in line


def test_unwritable_out(runner, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = one_line_error(
        runner.invoke(app, ["validate", "--quick", "--out", str(blocker / "sub")])
    )
    assert "file" in line
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        one_line_error(runner.invoke(app, ["validate", "--quick", "--out", str(locked / "v")]))


def test_suite_definitions():
    quick = suites.get_suite("quick")
    assert len(quick.tasks) >= 2 and "delta+bss" in quick.methods
    cpu = suites.get_suite("cpu")
    assert {t.model for t in cpu.tasks} >= {
        "bundled:efficientnet_lite0",
        "bundled:efficientnet_lite1",
        suites.RANDOM_LITE0,
    }
    assert dataclasses.asdict(quick)["name"] == "quick"
