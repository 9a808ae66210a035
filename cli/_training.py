"""What the training commands share: the executor choice, repeated options, the progress hook.

``finetune``, ``sweep`` and ``laser-sweep`` (``sweep laser``) use these. Choices come from the
registries they name; the registries of heavy packages (methods, scenarios) are not imported
to print ``--help``, so those options name where their values are listed and the library
checks them (an unknown name fails in one line that lists the registered ones).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._common import Executor, QuietOpt

__all__ = [
    "SIGTERM_EXIT",
    "Executor",
    "ExecutorOpt",
    "LogOpt",
    "SlurmOpt",
    "QuietOpt",
    "progress_hook",
]

#: Exit status of a run stopped by SIGTERM after saving its training state (128 + 15).
SIGTERM_EXIT = 143

ExecutorOpt = Annotated[
    Executor | None,
    typer.Option(
        help="Where the cells run: inline is this process, local a pool of processes, slurm "
        "a job array [default: the file's, else local].",
        show_default=False,
    ),
]
LogOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--log",
        help="Also log to tensorboard (RUN_DIR/tensorboard), mlflow (MLFLOW_TRACKING_URI) or "
        "csv, repeatable: scalars, feature spectra, the config, the checkpoint (mlflow). "
        "Needs the extra of the same name.",
        show_default=False,
    ),
]
SlurmOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--slurm",
        help="SLURM parameter KEY=VALUE, repeatable: --slurm partition=gpu --slurm timeout_min=720.",
        show_default=False,
    ),
]


def progress_hook(update: Any) -> Any:
    """A training hook that moves a progress bar: iteration, loss, accuracy, BSS, speed."""
    from spectral_probe.training import TrainingHook

    class Progress(TrainingHook):
        def __init__(self) -> None:
            self.text = ""

        def on_start(self, trainer: Any) -> None:
            update(trainer.iteration, trainer.total, "")

        def on_step(self, trainer: Any) -> None:
            update(trainer.iteration, trainer.total, self.text)

        def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
            speed = record.get(f"{trainer.task.unit}_per_s")
            parts = [f"loss {record['loss']:.4f}", f"acc {record['train_acc']:.1%}"]
            if "loss_bss" in record:
                parts.append(f"bss {record['loss_bss']:.2e}")
            if speed:
                parts.append(f"{speed:,.0f} {trainer.task.unit}/s")
            self.text = "  ".join(parts)

    return Progress()
