"""Sweeps: grid expansion, restart after an interruption, the local executor, aggregation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from spectral_probe.errors import ConfigError
from spectral_probe.training import (
    StopAfter,
    finetune,
    load_sweep,
    paper_table2,
    run_sweep,
    sweep_table,
)
from spectral_probe.training import sweep as sweep_mod

from ._runs import fake_run as _fake_run

TINY = """
[sweep]
name = "tiny"

[base]
model = "tiny:cnn"
data = "digits"
batch_size = 32
iterations = {iterations}
lr = 0.1
lr_step = 1000
image_size = 8
resize = 8
ten_crop = false
augment = "none"
log_every = 5
checkpoint_every = 5

[grid]
{grid}
{extra}
[executor]
kind = "inline"
imports = ["training._tiny"]
"""


def _spec(
    tmp_path: Path,
    *,
    iterations: int = 12,
    extra: str = "",
    grid: str = 'method = ["l2", "l2+bss"]\nseed = [0, 1]',
) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(TINY.format(iterations=iterations, extra=extra, grid=grid))
    return path


def test_grid_expansion_applies_hyperparameters_only_where_they_belong(tmp_path):
    spec = load_sweep(
        _spec(
            tmp_path,
            extra='rate = ["50%", { rate = "100%", lr = 0.05 }]\n[grid.hp]\n"bss.k" = [1, 2]\n',
        )
    )
    configs = spec.configs()
    # l2: 2 seeds x 2 rates; l2+bss: 2 seeds x 2 rates x 2 k
    assert len(configs) == 4 + 8 == len({c.run_id for c in configs})
    assert {c.hp.get("bss.k") for c in configs if c.method == "l2+bss"} == {1, 2}
    assert all("bss.k" not in c.hp for c in configs if c.method == "l2")
    assert {(c.rate, c.lr) for c in configs} == {("50%", 0.1), ("100%", 0.05)}


def test_bad_cells_and_files_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"sweep cell 1 \(method='l3'"):
        load_sweep(_spec(tmp_path, grid='method = ["l3"]')).configs()
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\nmethod = []\n")
    with pytest.raises(ConfigError, match="non-empty list for grid axis 'method'"):
        load_sweep(bad)
    bad.write_text("[sweeep]\n")
    with pytest.raises(ConfigError, match="expected sections"):
        load_sweep(bad)


def test_interrupted_sweep_restarts_and_completes_every_cell_once(tmp_path, monkeypatch):
    spec = load_sweep(_spec(tmp_path))
    out = tmp_path / "runs"
    calls: list[str] = []
    real = sweep_mod.run_cell

    class Interrupt(StopAfter):
        def on_step(self, trainer):
            if trainer.iteration == 7:
                raise KeyboardInterrupt  # a kill in the middle of the third cell

    def flaky(config, run_dir, imports=()):
        calls.append(Path(run_dir).name)
        if len(calls) == 3:
            from spectral_probe.training import FinetuneConfig

            finetune(FinetuneConfig.from_dict(config), run_dir, hooks=[Interrupt(0)])
        return real(config, run_dir, imports)

    monkeypatch.setattr(sweep_mod, "run_cell", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out)
    finished = {p.parent.name: p.read_text() for p in out.glob("*/final.json")}
    assert len(finished) == 2
    monkeypatch.setattr(sweep_mod, "run_cell", real)
    report = run_sweep(spec, out)
    assert report.counts() == {"skipped": 2, "finished": 2}
    ids = [c.run_id for c in spec.configs()]
    assert sorted(p.parent.name for p in out.glob("*/final.json")) == sorted(ids)
    for run_id, text in finished.items():  # finished cells were not run again
        assert (out / run_id / "final.json").read_text() == text
    third = json.loads((out / calls[2] / "final.json").read_text())
    assert third["status"] == "finished" and third["sessions"] == 2  # resumed from iteration 5
    again = run_sweep(spec, out)
    assert again.counts() == {"skipped": 4}
    assert json.loads((out / "sweep.json").read_text())["runs"] == ids


def test_a_graceful_stop_ends_an_inline_sweep_instead_of_moving_on(tmp_path, monkeypatch):
    """SIGTERM (here: the same request_stop path) in the second cell stops the sweep there;
    rerunning resumes that cell and runs the rest."""
    spec = load_sweep(_spec(tmp_path))
    out = tmp_path / "runs"
    calls: list[str] = []
    real = sweep_mod.run_cell

    def stopping(config, run_dir, imports=()):
        calls.append(Path(run_dir).name)
        if len(calls) == 2:
            from spectral_probe.training import FinetuneConfig

            result = finetune(FinetuneConfig.from_dict(config), run_dir, hooks=[StopAfter(5)])
            return {"status": result.status}
        return real(config, run_dir, imports)

    monkeypatch.setattr(sweep_mod, "run_cell", stopping)
    report = run_sweep(spec, out)
    assert len(calls) == 2
    assert report.counts() == {"finished": 1, "interrupted": 1, "planned": 2}
    monkeypatch.setattr(sweep_mod, "run_cell", real)
    assert run_sweep(spec, out).counts() == {"skipped": 1, "finished": 3}


@pytest.mark.slow
def test_local_executor_runs_cells_in_processes(tmp_path, monkeypatch):
    tests_dir = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    spec = load_sweep(_spec(tmp_path, iterations=5, grid='method = ["l2", "l2+bss"]'))
    report = run_sweep(spec, tmp_path / "runs", executor="local", max_parallel=2)
    assert report.counts() == {"finished": 2}, report.cells
    assert len(list((tmp_path / "runs").glob("*/model.safetensors"))) == 2


def test_sweep_table_mean_std_and_the_paper(tmp_path):
    accs = [0.45, 0.46, 0.47]
    for seed, acc in enumerate(accs):
        _fake_run(
            tmp_path, f"l2-15-{seed}", data="cub200:/d", method="l2", rate="15%", seed=seed, acc=acc
        )
        _fake_run(
            tmp_path,
            f"bss-15-{seed}",
            data="cub200:/d",
            method="l2+bss",
            rate="15%",
            seed=seed,
            acc=acc + 0.02,
        )
    _fake_run(tmp_path, "l2-30-0", data="cub200:/d", method="l2", rate="30%", seed=0, acc=0.6)
    _fake_run(
        tmp_path,
        "nan",
        data="cub200:/d",
        method="l2",
        rate="30%",
        seed=9,
        acc=0.0,
        status="diverged",
    )
    table = sweep_table(tmp_path, paper=True)
    cells = table.cells.set_index(["method", "rate"])
    assert cells.loc[("l2", "15%"), "n"] == 3
    assert cells.loc[("l2", "15%"), "mean"] == pytest.approx(46.0)
    assert cells.loc[("l2", "15%"), "std"] == pytest.approx(np.std([45, 46, 47], ddof=1))
    assert cells.loc[("l2", "30%"), "n"] == 1  # the diverged run is left out
    assert cells.loc[("l2+bss", "15%"), "paper_mean"] == 47.74
    assert cells.loc[("l2", "15%"), "paper_std"] == 0.12
    md = table.to_markdown()
    assert "| dataset | method | 15% | 15% (paper) | 30% | 30% (paper) |" in md
    assert "46.00 ± 1.00 (n=3) | 45.25 ± 0.12" in md


def test_sweep_table_keys_include_varying_hyperparameters(tmp_path):
    for k in (1, 2):
        _fake_run(
            tmp_path,
            f"k{k}",
            data="digits",
            method="l2+bss",
            rate="50%",
            seed=0,
            acc=0.9,
            hp={"bss.eta": 0.001, "bss.k": k},
        )
    table = sweep_table(tmp_path)
    assert "hp.bss.k" in table.keys and "hp.bss.eta" not in table.keys
    assert len(table.cells) == 2


def test_paper_table_ships_with_the_package():
    ref = paper_table2()
    assert len(ref) == 5 * 6 * 4
    row = ref[
        (ref.dataset == "stanford_cars")
        & (ref.method == "L2+BSS")
        & (ref.sampling_rate_percent == 15)
    ]
    assert row[["top1_mean", "top1_std"]].values.tolist() == [[40.57, 0.12]]


def test_packaged_sweeps_match_the_repository_and_table2_is_the_paper_grid(monkeypatch):
    root = Path(__file__).resolve().parents[2]
    from importlib import resources

    for name in sweep_mod.list_packaged_sweeps():
        shipped = (resources.files("spectral_probe") / "resources" / f"{name}.toml").read_text()
        assert shipped == (root / "sweeps" / f"{name}.toml").read_text()
    monkeypatch.setenv("DATA", "/data")
    configs = load_sweep("table2").configs()
    assert len(configs) == 5 * 6 * 4 * 5
    assert {c.data.partition(":")[0] for c in configs} == {
        "stanford-dogs",
        "cub200",
        "stanford-cars",
        "oxford-pets",
        "fgvc-aircraft",
    }
    c = configs[0]
    assert (c.preset, c.momentum, c.batch_size, c.iterations, c.ten_crop) == (
        "paper",
        0.95,
        48,
        9000,
        True,
    )
    monkeypatch.delenv("DATA")
    with pytest.raises(ConfigError, match="environment variable DATA"):
        load_sweep("table2")


def test_task_options_in_base_and_grid_merge_and_are_checked(tmp_path):
    text = """
[base]
model = "bundled:minilm-l6"
data = "glue-sst2:/nowhere"
task = "text-classification"
preset = "glue"
method = "none"
[base.task_options]
pool = "mean"
[grid]
seed = [0]
[grid.task_options]
{axis} = [64, 128]
"""
    path = tmp_path / "glue.toml"
    path.write_text(text.format(axis="max_length"))
    configs = load_sweep(path).configs()
    assert [c.task_options for c in configs] == [
        {"pool": "mean", "max_length": 64},
        {"pool": "mean", "max_length": 128},
    ]
    assert len({c.run_id for c in configs}) == 2
    path.write_text(text.format(axis="maxlen"))
    with pytest.raises(
        ConfigError,
        match=r"^sweep cell 1 \(seed=0, task_options.maxlen=64\): expected task options of "
        r"text-classification from \['max_length', 'pool', 'dropout'\], found \['maxlen'\]$",
    ):
        load_sweep(path).configs()
    assert all(c.task_options == {} for c in load_sweep(_spec(tmp_path)).configs())
    path.write_text(
        TINY.format(iterations=4, grid="seed = [0]", extra="task_options = [{ pool = 'mean' }]\n")
    )
    with pytest.raises(
        ConfigError,
        match=r"expected task options of image-classification from \['interpolation', 'holdout'\], found \['pool'\]",
    ):
        load_sweep(path).configs()


def test_packaged_table3_and_table4_grids(monkeypatch):
    monkeypatch.setenv("DATA", "/data")
    monkeypatch.setenv("MODELS", "/models")
    t3 = load_sweep("table3").configs()
    assert len(t3) == 2 * 5 and {c.method for c in t3} == {"ewc", "ewc+bss"}
    assert {(c.task, c.preset, c.model, c.data, c.epochs) for c in t3} == {
        ("permuted", "permuted", "mlp:784-400-400-10", "mnist:/data/MNIST", 20)
    }
    t4 = load_sweep("table4").configs()
    assert len(t4) == 4 * 2 * 3 and {c.method for c in t4} == {"none", "bss"}
    assert {c.data.partition(":")[0] for c in t4} == {
        "glue-mnli",
        "glue-qnli",
        "glue-mrpc",
        "glue-sst2",
    }
    c = t4[0]
    assert (c.task, c.preset, c.model, c.optimizer, c.lr, c.batch_size, c.epochs) == (
        "text-classification",
        "glue",
        "hf:/models/bert-base-uncased",
        "adamw",
        2e-5,
        32,
        3,
    )


def test_what_changed_sweeps_reuse_the_tuning_runs_at_seed_0():
    """docs/what-changed.md's sweeps: 11 tuning cells, 12 final ones whose seed-0 cells are
    tuning cells (same run ids), one learning rate per variant."""
    root = Path(__file__).resolve().parents[2] / "sweeps"
    tune = load_sweep(root / "what-changed-tune.toml").configs()
    final = load_sweep(root / "what-changed.toml").configs()
    assert len(tune) == 11 and len(final) == 12
    seed0 = {c.run_id for c in final if c.seed == 0}
    assert len(seed0) == 4 and seed0 <= {c.run_id for c in tune}
    variants = {(c.lora.get("rank"), c.lora.get("rslora")) for c in final}
    assert variants == {(None, None), (8, False), (64, False), (64, True)}
