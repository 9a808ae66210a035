"""Hooks into the training loop: progress display, extra logging, stopping, scenario phases.

A hook subclasses :class:`TrainingHook` and overrides the phases it needs; every phase
receives the running :class:`~spectral_probe.training.engine.Trainer` (its ``config``,
``setup``, ``model``, ``optimizer``, ``regularizer``, ``iteration``, ``total`` and
``request_stop()``). Hooks run on every rank; write files only where ``trainer.dist.is_main``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import Trainer
    from .rundir import RunResult

__all__ = ["TrainingHook", "StopAfter"]


class TrainingHook:
    """Base class: every phase does nothing."""

    def on_start(self, trainer: Trainer) -> None:
        """After set-up (and after loading a resumed state), before the first step."""

    def on_step(self, trainer: Trainer) -> None:
        """After each optimizer step (``trainer.iteration`` steps are done)."""

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Before ``record`` is added to ``metrics.jsonl``; may add keys to it."""

    def on_eval(self, trainer: Trainer, split: str, result: dict[str, Any]) -> None:
        """After an evaluation of ``split`` (``val`` during training, any split at the end)."""

    def on_checkpoint(self, trainer: Trainer) -> None:
        """After the training state was saved."""

    def on_end(self, trainer: Trainer, result: RunResult) -> None:
        """After the run finished or stopped (not after a divergence)."""


class StopAfter(TrainingHook):
    """Request a graceful stop (checkpoint, then return) once ``iterations`` steps are done.

    The same path as SIGTERM: useful for pilot runs, time-sliced jobs and tests of resuming.
    """

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations

    def on_step(self, trainer: Trainer) -> None:
        if trainer.iteration >= self.iterations:
            trainer.request_stop()
