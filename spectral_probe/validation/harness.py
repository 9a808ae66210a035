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
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._io import check_writable_dir, write_json
from ..errors import SpectralProbeError
from ..training import FinetuneConfig
from ..training.sweep import SweepReport, SweepSpec, run_sweep
from .suites import Suite, Task

__all__ = [
    "LOGME_SAMPLES",
    "SIGNALS",
    "full_cells",
    "pilot_cells",
    "run_suite",
    "suite_sweep",
    "task_key",
    "task_signals",
]

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


#: The signals measured per task (see :func:`task_signals`).
SIGNALS = ("tail_energy", "top_alignment", "logme")
#: Training images scored by LogME per task (a seeded subset of the training split).
LOGME_SAMPLES = 1000


def task_signals(
    suite: Suite, task: Task, out: str | Path, device: str = "auto"
) -> dict[str, float | None]:
    """The report's spectral signals and a transferability score for ``task``, on training
    inputs only; cached in ``out/signals`` (a signal missing from the cache is measured).

    ``tail_energy``: share of the energy in the smaller half of the pre-trained model's batch
    feature spectrum on training images. ``top_alignment``: mean spectral-window alignment of
    the last block's layers between the pre-trained model and the seed-0 L2 pilot (``None``
    without an L2 candidate). ``logme``: LogME evidence per sample of the pre-trained
    penultimate features on a seeded subset of :data:`LOGME_SAMPLES` training images.
    """
    path = Path(out) / "signals" / f"{task_key(task)}.json"
    signals: dict[str, float | None] = {}
    if path.is_file():
        signals = dict(json.loads(path.read_text())["signals"])
    missing = [name for name in SIGNALS if name not in signals]
    if not missing:
        return signals
    from ..models import load_model

    pilots = pilot_cells(suite, task, device)
    pretrained = load_model(task.model)
    if "tail_energy" in missing:
        signals["tail_energy"] = _tail_energy(suite, task, pretrained, pilots[0], device)
    if "top_alignment" in missing:
        signals["top_alignment"] = _top_alignment(suite, pilots, pretrained, Path(out), device)
    if "logme" in missing:
        signals["logme"] = _logme(task, pretrained, pilots[0], device)
    write_json(path, {"task": task.name, "signals": signals})
    return signals


def _tail_energy(
    suite: Suite, task: Task, pretrained: Any, cfg: FinetuneConfig, device: str
) -> float:
    from ..analysis import feature_spectrum

    spectra = feature_spectrum(
        {"pre-trained": pretrained}, task.data, split="train", batch_size=int(cfg.batch_size or 32),
        max_batches=suite.spectrum_batches, image_size=cfg.image_size, device=device, dataset_spectrum=False,
    )  # fmt: skip
    return float(spectra.summary.set_index("model").loc["pre-trained", "small_half_energy"])


def _top_alignment(
    suite: Suite, pilots: list[FinetuneConfig], pretrained: Any, out: Path, device: str
) -> float | None:
    from ..analysis import compare_weights
    from ..models import load_model
    from ..report.evidence import top_layers

    l2 = [c for c in pilots if c.method == "l2" and c.seed == suite.pilot_seeds[0]]
    run = out / "runs" / l2[0].run_id if l2 else None
    if run is None or not (run / "model.safetensors").is_file():
        return None
    weights = compare_weights(
        pretrained, load_model((run / "model.safetensors").as_posix()), device=device
    )
    rows = weights.layers[weights.layers["layer"].isin(top_layers(weights))][
        "cos_window_mean"
    ].dropna()
    value = float(rows.mean()) if len(rows) else math.nan
    return value if math.isfinite(value) else None


def _logme(task: Task, pretrained: Any, cfg: FinetuneConfig, device: str) -> float | None:
    from ..transferability import rank_models

    ranking = rank_models(
        {"pre-trained": pretrained}, task.data, split="train", scores=["logme"], max_samples=LOGME_SAMPLES,
        batch_size=int(cfg.batch_size or 32), image_size=cfg.image_size, device=device,
    )  # fmt: skip
    value = float(ranking.table["logme"].iloc[0])
    return value if math.isfinite(value) else None
