"""Run a validation suite: the report's pilots and full fine-tunes of every candidate, as sweep cells.

Every run of a suite (the pilots of each task, exactly as ``spectral-probe report`` configures
them, and the full runs of every candidate) is one cell of an ordinary sweep
(:func:`~spectral_probe.training.sweep.run_sweep`) under ``OUT/runs``: run ids hash the
configuration, so a restarted validation skips finished cells and resumes interrupted
ones, and ``--executor slurm`` sends the cells to a cluster through submitit. The spectral
signals of each task are measured once and cached under ``OUT/signals``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import check_writable_dir, write_json
from ..errors import SpectralProbeError
from ..training import FinetuneConfig
from ..training.sweep import SweepReport, SweepSpec, run_sweep
from .suites import Suite, Task

__all__ = ["full_cells", "pilot_cells", "run_suite", "suite_sweep", "task_key", "task_signals"]

Progress = Callable[[int, int, str], None]


def task_key(task: Task) -> str:
    """A short stable file name for a task."""
    return hashlib.sha1(task.name.encode()).hexdigest()[:10]


def _report_settings(suite: Suite, task: Task, device: str) -> Any:
    from ..report.settings import ReportSettings

    return ReportSettings(
        model=task.model, data=task.data, methods=suite.methods, rates=(task.rate,), seeds=suite.pilot_seeds,
        preset=suite.preset, iterations=suite.pilot_iterations, image_size=suite.image_size, val=suite.val,
        eval_max=suite.pilot_eval_max, spectrum_batches=suite.spectrum_batches, device=device,
    )  # fmt: skip


def pilot_cells(suite: Suite, task: Task, device: str = "auto") -> list[FinetuneConfig]:
    """The report's pilots of ``task`` (:func:`~spectral_probe.report.pilot_configs`)."""
    from ..report.pilot import pilot_configs

    configs = pilot_configs(_report_settings(suite, task, device))
    if suite.overrides:
        configs = [c.with_overrides(**suite.overrides).resolve() for c in configs]
    return configs


def full_cells(suite: Suite, task: Task, device: str = "auto") -> list[FinetuneConfig]:
    """Full fine-tunes of every candidate on all the training data, judged on the test split."""
    return [
        FinetuneConfig(
            model=task.model, data=task.data, method=method, rate=task.rate, seed=seed, preset=suite.preset,
            iterations=suite.full_iterations, image_size=suite.image_size, val=0, eval_max=suite.full_eval_max,
            device=device, **dict(suite.overrides),
        ).resolve()
        for method in suite.methods
        for seed in suite.full_seeds
    ]  # fmt: skip


def suite_sweep(suite: Suite, device: str = "auto") -> SweepSpec:
    """Every run of ``suite`` as one sweep (one grid axis whose values are whole configs)."""
    cells = [
        c
        for t in suite.tasks
        for c in (*pilot_cells(suite, t, device), *full_cells(suite, t, device))
    ]
    return SweepSpec(
        name=f"validate-{suite.name}", base={}, grid={"cell": [c.to_dict() for c in cells]}
    )


def run_suite(
    suite: Suite,
    out: str | Path,
    *,
    executor: str = "inline",
    max_parallel: int = 1,
    device: str = "auto",
    slurm: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> SweepReport:
    """Run (or resume) every cell of ``suite`` under ``out/runs``.

    Raises:
        OutputError: ``out`` cannot be written.
        SpectralProbeError: a cell failed or was interrupted (re-run the same command to go on).
    """
    out = check_writable_dir(out)
    report = run_sweep(
        suite_sweep(suite, device), out / "runs", executor=executor, max_parallel=max_parallel, slurm=slurm,
        progress=progress,
    )  # fmt: skip
    bad = report.cells[
        ~report.cells["status"].isin(["finished", "skipped", "diverged", "submitted"])
    ]
    if not bad.empty:
        row = bad.iloc[0]
        error = row.get("error") if isinstance(row.get("error"), str) else ""
        raise SpectralProbeError(
            f"{len(bad)} validation cell(s) did not finish, e.g. {row['run_id']} is {row['status']}"
            + (f" ({error})" if error else "")
            + f"; re-run the same command to continue (finished cells in {out / 'runs'} are kept)"
        )
    return report


def task_signals(
    suite: Suite, task: Task, out: str | Path, device: str = "auto"
) -> dict[str, float | None]:
    """The report's spectral signals for ``task``, on training inputs; cached in ``out/signals``.

    ``tail_energy``: share of the energy in the smaller half of the pre-trained model's batch
    feature spectrum on training images. ``top_alignment``: mean spectral-window alignment of
    the last block's layers between the pre-trained model and the seed-0 L2 pilot (``None``
    without an L2 candidate).
    """
    import math

    from ..analysis import compare_weights, feature_spectrum
    from ..models import load_model
    from ..report.evidence import top_layers

    path = Path(out) / "signals" / f"{task_key(task)}.json"
    if path.is_file():
        cached: dict[str, float | None] = json.loads(path.read_text())["signals"]
        return cached
    pilots = pilot_cells(suite, task, device)
    cfg = pilots[0]
    pretrained = load_model(task.model)
    spectra = feature_spectrum(
        {"pre-trained": pretrained}, task.data, split="train", batch_size=int(cfg.batch_size or 32),
        max_batches=suite.spectrum_batches, image_size=cfg.image_size, device=device, dataset_spectrum=False,
    )  # fmt: skip
    tail = float(spectra.summary.set_index("model").loc["pre-trained", "small_half_energy"])
    alignment: float | None = None
    l2 = [c for c in pilots if c.method == "l2" and c.seed == suite.pilot_seeds[0]]
    run = Path(out) / "runs" / l2[0].run_id if l2 else None
    if run is not None and (run / "model.safetensors").is_file():
        weights = compare_weights(
            pretrained, load_model((run / "model.safetensors").as_posix()), device=device
        )
        top = top_layers(weights)
        rows = weights.layers[weights.layers["layer"].isin(top)]["cos_window_mean"].dropna()
        value = float(rows.mean()) if len(rows) else math.nan
        alignment = value if math.isfinite(value) else None
    signals = {"tail_energy": tail, "top_alignment": alignment}
    write_json(path, {"task": task.name, "signals": signals})
    return signals
