"""Pilot fine-tunes: every candidate method, briefly, judged on a validation split.

Each pilot is an ordinary run of the fine-tuning engine, written to ``OUT/pilots/<run id>``.
Run ids are hashes of the configuration, so re-running a report (after an interruption, or
with ``--overwrite``) finds finished pilots and reuses them, and resumes interrupted ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..training import FinetuneConfig, RunResult, TrainingHook, finetune, load_run
from ..training.rundir import RunDir
from .settings import ReportSettings

__all__ = ["PilotRuns", "pilot_configs", "run_pilots"]

#: ``progress(done_runs, total_runs, iteration, iterations, label)``
PilotProgress = Callable[[int, int, int, int, str], None]


@dataclass(frozen=True)
class PilotRuns:
    """The pilot runs of a report.

    Attributes:
        table: one row per run: ``method``, ``rate``, ``seed``, ``run_id``, ``run_dir``,
            ``val_accuracy``, ``n_val``, ``test_accuracy``, ``train_seconds``, ``reused``.
        runs: the :class:`~spectral_probe.training.RunResult` of each row, same order.
    """

    table: pd.DataFrame
    runs: list[RunResult]

    def run(self, method: str, rate: str, seed: int | None = None) -> RunResult:
        """The run of ``method`` at ``rate`` (the first seed unless given)."""
        rows = self.table[(self.table["method"] == method) & (self.table["rate"] == rate)]
        if seed is not None:
            rows = rows[rows["seed"] == seed]
        if rows.empty:
            raise KeyError(f"no pilot run of {method} at {rate}")
        return self.runs[int(rows.index[0])]


def pilot_configs(settings: ReportSettings) -> list[FinetuneConfig]:
    """The run configs of every pilot, rate-major then method then seed.

    Every method runs with every seed of ``settings.seeds``, and a run's seed is also its
    split seed (``FinetuneConfig.split_seed``: no ``data_seed`` is set), so the methods of one
    seed share the training subset, the validation split, the head's initialisation and the
    batch order: the recommendation compares them pairwise over seeds.
    """
    configs = []
    for rate in settings.rates:
        for method in settings.methods:
            for seed in settings.seeds:
                cfg = FinetuneConfig(
                    model=settings.model,
                    data=settings.data,
                    method=method,
                    rate=rate,
                    seed=seed,
                    preset=settings.preset,
                    iterations=settings.iterations,
                    image_size=settings.image_size,
                    val=settings.val,
                    eval_max=settings.eval_max,
                    device=settings.device,
                ).resolve()
                # about 20 log points per pilot: the spectrum-over-time figure needs them
                configs.append(
                    cfg.with_overrides(log_every=max(1, int(cfg.iterations or 1) // 20)).resolve()
                )
    return configs


class _Forward(TrainingHook):
    def __init__(self, report: Callable[[int, int], None]) -> None:
        self.report = report

    def on_start(self, trainer: object) -> None:
        self.report(trainer.iteration, trainer.total)  # type: ignore[attr-defined]

    def on_step(self, trainer: object) -> None:
        self.report(trainer.iteration, trainer.total)  # type: ignore[attr-defined]


def run_pilots(
    settings: ReportSettings, directory: str | Path, *, progress: PilotProgress | None = None
) -> PilotRuns:
    """Run (or reuse) every pilot of ``settings`` under ``directory``."""
    directory = Path(directory)
    configs = pilot_configs(settings)
    rows, runs = [], []
    for i, cfg in enumerate(configs):
        run_dir = directory / cfg.run_id
        label = f"{cfg.method} @ {cfg.rate}, seed {cfg.seed}"
        reused = RunDir(run_dir).finished
        if reused:
            result = load_run(run_dir)
        else:
            hooks: list[TrainingHook] = []
            if progress is not None:

                def forward(
                    it: int,
                    total: int,
                    i: int = i,
                    label: str = label,
                    step: PilotProgress = progress,
                ) -> None:
                    step(i, len(configs), it, total, label)

                hooks.append(_Forward(forward))
            result = finetune(cfg, run_dir, resume="auto", hooks=hooks)
        if progress is not None:
            progress(i + 1, len(configs), 0, 0, label)
        runs.append(result)
        val = result.final.get("val") or {}
        rows.append(
            {
                "method": cfg.method,
                "rate": str(cfg.rate),
                "seed": cfg.seed,
                "run_id": cfg.run_id,
                "run_dir": str(run_dir),
                "status": result.status,
                "val_accuracy": val.get("accuracy"),
                "n_val": val.get("n"),
                "test_accuracy": result.test_accuracy,
                "train_seconds": (result.final.get("timings") or {}).get("train_seconds"),
                "reused": reused,
            }
        )
    return PilotRuns(pd.DataFrame(rows), runs)
