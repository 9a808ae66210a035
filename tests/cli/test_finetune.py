"""``spectral-probe finetune``, ``sweep``, ``sweep-table``, ``plot-runs``: results, bad input, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _fixtures.cli import one_line_error
from spectral_probe_cli.main import app
from training import _tiny  # noqa: F401  (the tiny model source: tests/training/_tiny.py)

from spectral_probe.training import FinetuneConfig, StopAfter, finetune

TESTS = Path(__file__).resolve().parents[1]
TINY = [
    "--model",
    "tiny:cnn",
    "--data",
    "digits",
    "--batch-size",
    "32",
    "--image-size",
    "8",
    "--lr",
    "0.1",
    "--single-crop",
    "--log-every",
    "10",
]


def _run(runner, args):
    return runner.invoke(app, args)


def test_finetune_writes_a_run_and_prints_accuracy(runner, tmp_path):
    res = _run(
        runner,
        [
            "finetune",
            *TINY,
            "--method",
            "l2+bss",
            "--iterations",
            "30",
            "--out",
            str(tmp_path),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "test top-1:" in res.output and "trained 30 iterations" in res.output
    (run,) = tmp_path.iterdir()
    assert run.name.startswith("digits-l2+bss-100pct-s0-")
    assert {"config.json", "metrics.jsonl", "final.json", "model.safetensors", "model.json"} <= {
        p.name for p in run.iterdir()
    }
    again = _run(
        runner,
        [
            "finetune",
            *TINY,
            "--method",
            "l2+bss",
            "--iterations",
            "30",
            "--out",
            str(tmp_path),
            "-q",
        ],
    )
    assert "found a finished run" in one_line_error(again)


def test_finetune_json_and_hyperparameters(runner, tmp_path):
    res = _run(
        runner,
        [
            "finetune",
            *TINY,
            "--method",
            "bss",
            "--hp",
            "bss.eta=0.01",
            "--hp",
            "k=2",
            "--iterations",
            "10",
            "--run-dir",
            str(tmp_path / "r"),
            "--json",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["status"] == "finished"
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert cfg["hp"]["bss.eta"] == 0.01 and cfg["hp"]["bss.k"] == 2


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--method", "l2+bsss"], "found 'bsss'"),
        (["--method", "bss", "--hp", "bss.alpha=1"], "found 'bss.alpha'"),
        (["--rate", "1"], "at least 2 images per class"),
        (["--method", "l2+bss", "--batch-size", "1"], "batch size > bss.k"),
        (["--hp", "eta"], "NAME=VALUE"),
        (["--preset", "fast"], "expected a preset"),
        (["--select", "best"], "val > 0"),
        (["--lora-alpha", "16"], "expected lora.rank"),
        (["--lora-rank", "4", "--lora-targets", "nothing"], "found none for 'nothing'"),
    ],
)
def test_bad_input_is_one_line_and_no_run_directory(runner, tmp_path, args, fragment):
    res = _run(
        runner,
        ["finetune", *TINY, "--iterations", "5", "--out", str(tmp_path / "runs"), "-q", *args],
    )
    assert fragment in one_line_error(res)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_missing_data(runner, tmp_path):
    res = _run(runner, ["finetune", "--model", "tiny:cnn", "--out", str(tmp_path), "-q"])
    assert "expected --data" in one_line_error(res)


def test_resume_refuses_another_config_then_continues(runner, tmp_path):
    cfg = FinetuneConfig(
        model="tiny:cnn",
        data="digits",
        batch_size=32,
        image_size=8,
        resize=9,
        lr=0.1,
        ten_crop=False,
        iterations=30,
        log_every=10,
        checkpoint_every=10,
    )
    finetune(cfg, tmp_path / "r", hooks=[StopAfter(12)])
    bad = _run(
        runner, ["finetune", "--resume", str(tmp_path / "r"), "--lr", "0.5", "--seed", "3", "-q"]
    )
    line = one_line_error(bad)
    assert "lr: 0.1 != 0.5" in line and "seed: 0 != 3" in line
    assert not (tmp_path / "r" / "final.json").exists()
    good = _run(runner, ["finetune", "--resume", str(tmp_path / "r"), "-q"])
    assert good.exit_code == 0, good.output
    assert json.loads((tmp_path / "r" / "final.json").read_text())["sessions"] == 2


def test_diverging_run_says_so(runner, tmp_path):
    res = _run(
        runner,
        [
            "finetune",
            *TINY,
            "--lr",
            "1e9",
            "--iterations",
            "40",
            "--run-dir",
            str(tmp_path / "r"),
            "-q",
        ],
    )
    assert "loss became NaN or infinite at iteration" in one_line_error(res)
    assert json.loads((tmp_path / "r" / "final.json").read_text())["status"] == "diverged"


_DRIVER = """
import sys
sys.path.insert(0, {tests!r})
import training._tiny
from spectral_probe_cli.main import run
sys.argv = ["spectral-probe", "finetune", "--model", "tiny:mlp", "--data", "digits", "--batch-size", "16",
            "--image-size", "8", "--lr", "0.05", "--single-crop", "--iterations", "600", "--log-every", "100",
            "--checkpoint-every", "1000", "--run-dir", {run!r}, "--device", "cpu", "-q"]
run()
"""


def test_sigterm_saves_the_state_and_resume_finishes(runner, tmp_path):
    run_dir = tmp_path / "r"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", _DRIVER.format(tests=str(TESTS), run=str(run_dir))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.time() + 60
    while not (run_dir / "config.json").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "stopped after iteration" in err and "--resume" in err and "Traceback" not in err
    state = __import__("torch").load(run_dir / "train_state.pt", weights_only=True)
    assert 0 < state["iteration"] < 600
    assert not (run_dir / "final.json").exists()
    res = _run(runner, ["finetune", "--resume", str(run_dir), "-q"])
    assert res.exit_code == 0, res.output
    final = json.loads((run_dir / "final.json").read_text())
    assert final["iterations"] == 600 and final["sessions"] == 2


_SWEEP = """
[sweep]
name = "cli"
[base]
model = "tiny:cnn"
data = "digits"
batch_size = 32
iterations = 10
lr = 0.1
image_size = 8
resize = 8
ten_crop = false
[grid]
method = ["l2", "l2+bss"]
rate = ["50%", "100%"]
[executor]
kind = "inline"
imports = ["training._tiny"]
"""


def test_sweep_table_and_plots(runner, tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(_SWEEP)
    out = tmp_path / "runs"
    dry = _run(runner, ["sweep", str(spec), "--out", str(out), "--dry-run", "--json"])
    assert dry.exit_code == 0 and [c["status"] for c in json.loads(dry.stdout)] == ["planned"] * 4
    res = _run(runner, ["sweep", str(spec), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    assert "4 cells: 4 finished" in res.output
    again = _run(runner, ["sweep", str(spec), "--out", str(out), "-q"])
    assert "4 cells: 4 skipped" in again.output
    table = _run(runner, ["sweep-table", str(out)])
    assert table.exit_code == 0 and "| dataset | method | 50% | 100% |" in table.output
    csv = _run(runner, ["sweep-table", str(out), "--csv", "--paper"])
    assert csv.stdout.splitlines()[0].startswith("dataset,method,rate,n,mean,std")
    plots = _run(
        runner,
        ["plot-runs", str(out), "--out", str(tmp_path / "fig"), "--no-spectra", "--over-time"],
    )
    assert plots.exit_code == 0, plots.output
    names = {p.name for p in (tmp_path / "fig").iterdir()}
    assert (
        "error_vs_rate_digits.png" in names
        and sum(n.startswith("spectrum_time_") for n in names) == 4
    )
    empty = _run(runner, ["plot-runs", str(tmp_path / "fig"), "--out", str(tmp_path / "fig2")])
    assert "expected finished runs" in one_line_error(empty)


def test_log_csv_writes_tables_and_a_sweep_cell_logs_too(runner, tmp_path):
    res = _run(
        runner,
        [
            "finetune",
            *TINY,
            "--iterations",
            "10",
            "--run-dir",
            str(tmp_path / "r"),
            "-q",
            "--log",
            "csv",
        ],
    )
    assert res.exit_code == 0, res.output
    assert {"metrics.csv", "spectra.csv"} <= {p.name for p in (tmp_path / "r").iterdir()}
    spec = tmp_path / "s.toml"
    spec.write_text(
        _SWEEP.replace('rate = ["50%", "100%"]', 'rate = ["100%"]').replace(
            'method = ["l2", "l2+bss"]', 'method = ["l2"]'
        )
    )
    sweep = _run(
        runner, ["sweep", str(spec), "--out", str(tmp_path / "runs"), "-q", "--log", "csv"]
    )
    assert sweep.exit_code == 0, sweep.output
    (cell,) = [
        p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")
    ]
    assert (cell / "metrics.csv").is_file()
    assert json.loads((cell / "config.json").read_text())["config"]["log"] == ["csv"]


@pytest.mark.parametrize("command", ["finetune", "sweep"])
def test_log_unknown_target_is_one_line(runner, tmp_path, command):
    spec = tmp_path / "s.toml"
    spec.write_text(_SWEEP)
    args = [*TINY, "--iterations", "5"] if command == "finetune" else [str(spec)]
    res = _run(runner, [command, *args, "--out", str(tmp_path / "runs"), "-q", "--log", "wandb"])
    assert "found 'wandb'" in one_line_error(res)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("target", ["tensorboard", "mlflow"])
@pytest.mark.parametrize("command", ["finetune", "sweep"])
def test_log_without_the_extra_is_one_line_naming_it(
    runner, tmp_path, monkeypatch, target, command
):
    monkeypatch.setitem(sys.modules, target, None)  # `import tensorboard` raises ImportError
    spec = tmp_path / "s.toml"
    spec.write_text(_SWEEP)
    args = [*TINY, "--iterations", "5"] if command == "finetune" else [str(spec)]
    res = _run(runner, [command, *args, "--out", str(tmp_path / "runs"), "-q", "--log", target])
    assert f"pip install 'spectral-probe[{target}]'" in one_line_error(res)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_finetune_lora_writes_adapter_and_merged_model_compare_weights_reads(runner, tmp_path):
    args = ["finetune", *TINY, "--method", "none", "--iterations", "8", "--lora-rank", "4"]
    res = _run(runner, [*args, "--rslora", "--run-dir", str(tmp_path / "r"), "-q"])
    assert res.exit_code == 0, res.output
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())["config"]
    assert cfg["lora"] == {"rank": 4, "alpha": 4, "rslora": True, "targets": ""}
    assert json.loads((tmp_path / "r" / "adapter" / "adapter_config.json").read_text())[
        "use_rslora"
    ]
    res = _run(
        runner, ["compare-weights", "tiny:cnn", str(tmp_path / "r" / "model.safetensors"), "--json"]
    )
    assert res.exit_code == 0, res.output
    layers = {r["layer"]: r for r in json.loads(res.stdout)["layers"]}
    assert {"conv1", "conv2"} <= set(layers) and layers["conv1"]["w_rel_change"] > 0


def test_choices_come_from_the_registries(runner, tmp_path):
    """The executors are the job registry's; an unknown scenario or method fails in one line
    listing the registered ones (their registries are not imported to print --help)."""
    from spectral_probe._jobs import EXECUTORS
    from spectral_probe.regularizers import list_regularizers
    from spectral_probe.training import SCENARIOS

    spec = tmp_path / "s.toml"
    spec.write_text('[sweep]\nname = "s"\n[base]\ndata = "digits"\n', encoding="utf-8")
    res = runner.invoke(app, ["sweep", str(spec), "--executor", "nope"])
    assert res.exit_code == 2 and all(name in res.output for name in EXECUTORS)
    res = _run(runner, ["finetune", *TINY, "--scenario", "nope", "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and all(name in one_line_error(res) for name in SCENARIOS)
    res = _run(runner, ["finetune", *TINY, "--method", "l2+nope", "--out", str(tmp_path / "r")])
    names = [r.name for r in list_regularizers()]
    assert res.exit_code == 2 and all(name in one_line_error(res) for name in names)
    assert not (tmp_path / "r").exists()
