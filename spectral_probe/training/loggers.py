"""Experiment trackers as training hooks: TensorBoard, MLflow and CSV (``--log``).

``FinetuneConfig.log`` names the trackers of a run (``("tensorboard", "mlflow")``); the
engine builds them with :func:`build_loggers` before anything is written, so a missing
optional package fails at once, in one line naming the extra that installs it. Each logger is
a :class:`~spectral_probe.training.TrainingHook` that writes only on rank 0 and records:

- scalars at every ``metrics.jsonl`` line: ``train/loss``, ``train/loss_task``, one
  ``train/loss_<term>`` per regularizer, ``train/lr``, ``train/train_acc``,
  ``train/images_per_s`` (or ``tokens_per_s``), ``train/sv_min``; after each evaluation
  ``<split>/accuracy``, ``<split>/loss`` (and the task's own metrics, e.g. ``f1``);
- the feature spectrum logged with each line (the singular values of the batch feature
  matrix): a TensorBoard histogram ``features/singular_values``; in MLflow, ``spectra.csv``
  and the figure ``spectrum_over_time.png`` as artifacts at the end;
- the config as hyper-parameters (``hp.bss.eta``, ``task_options.pool``, ...);
- at the end: the final metrics, and in MLflow the run files and the final checkpoint
  (``model.safetensors`` + ``model.json`` under the artifact folder ``model``).

TensorBoard writes event files to ``RUN_DIR/tensorboard``. MLflow logs to the tracking
store of ``MLFLOW_TRACKING_URI`` (e.g. ``sqlite:///mlruns.db``) in the experiment
``MLFLOW_EXPERIMENT_NAME`` (default ``spectral-probe``); the MLflow run id is kept in
``RUN_DIR/mlflow.json`` so a resumed run continues the same MLflow run. CSV writes
``metrics.csv`` and ``spectra.csv`` (:meth:`~spectral_probe.training.RunResult.to_csv`)
into the run directory at the end.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._extras import require_extra
from .hooks import TrainingHook
from .log_targets import LOGGERS, check_loggers

if TYPE_CHECKING:
    from .engine import Trainer
    from .rundir import RunResult

__all__ = [
    "LOGGERS",
    "CSVLogger",
    "MLflowLogger",
    "TensorBoardLogger",
    "build_loggers",
    "check_loggers",
    "flat_config",
    "require_loggers",
]

_MLFLOW_FILE = "mlflow.json"


def build_loggers(names: Iterable[str]) -> list[TrainingHook]:
    """One hook per name of :data:`LOGGERS`, its optional package imported now.

    Raises:
        ConfigError: an unknown name.
        MissingExtraError: the package of a target is not installed (the message names the
            extra: ``pip install 'spectral-probe[tensorboard]'``).
    """
    classes: dict[str, type[TrainingHook]] = {
        "tensorboard": TensorBoardLogger,
        "mlflow": MLflowLogger,
        "csv": CSVLogger,
    }
    return [classes[name]() for name in check_loggers(names)]


def require_loggers(names: Iterable[str]) -> tuple[str, ...]:
    """Check ``names`` and import the optional package of each (before any run starts).

    Raises:
        ConfigError: an unknown name.
        MissingExtraError: a package is not installed.
    """
    checked = check_loggers(names)
    for name in checked:
        extra = LOGGERS[name]
        if extra is not None:
            require_extra(extra, extra, f"--log {name}")
    return checked


def flat_config(config: Mapping[str, Any]) -> dict[str, str | int | float | bool]:
    """A config dict as flat scalar hyper-parameters: tables become ``hp.bss.eta``, lists
    become comma-joined text, ``None`` values are left out."""
    out: dict[str, str | int | float | bool] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            for sub, v in flat_config(value).items():
                out[f"{key}.{sub}"] = v
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(map(str, value))
        elif isinstance(value, (str, int, float, bool)):
            out[key] = value
    return out


def _scalars(record: Mapping[str, Any], prefix: str, skip: Iterable[str] = ()) -> dict[str, float]:
    """The finite numbers of ``record`` as ``prefix/key``."""
    skipped = set(skip)
    out: dict[str, float] = {}
    for key, value in record.items():
        if key in skipped or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[f"{prefix}/{key}"] = float(value)
    return out


def _final_scalars(result: RunResult) -> dict[str, float]:
    """The evaluations of ``final.json`` as ``final/<split>_<metric>``."""
    final = result.final
    evals = dict(final.get("evals") or {})
    if final.get("val"):
        evals["val"] = final["val"]
    out: dict[str, float] = {}
    for split, metrics in evals.items():
        for tag, value in _scalars(metrics, "final", skip=("n",)).items():
            out[f"{tag.partition('/')[0]}/{split}_{tag.partition('/')[2]}"] = value
    return out


class TensorBoardLogger(TrainingHook):
    """Scalars, the feature spectrum as a histogram and the config as hparams, in
    ``RUN_DIR/tensorboard`` (read with ``tensorboard --logdir runs``)."""

    def __init__(self) -> None:
        require_extra("tensorboard", "tensorboard", "--log tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        self._writer_class = SummaryWriter
        self.writer: Any = None

    def on_start(self, trainer: Trainer) -> None:
        if trainer.dist.is_main:
            self.writer = self._writer_class(
                log_dir=str(trainer.run_dir / "tensorboard"), flush_secs=10
            )
            self.writer.add_text(
                "config", "```\n" + trainer.config.to_json() + "```", trainer.iteration
            )

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.writer is None:
            return
        it = int(record["iteration"])
        for tag, value in _scalars(record, "train", skip=("iteration", "seconds")).items():
            self.writer.add_scalar(tag, value, it)
        if record.get("sv"):
            import numpy as np

            self.writer.add_histogram("features/singular_values", np.asarray(record["sv"]), it)

    def on_eval(self, trainer: Trainer, split: str, result: dict[str, Any]) -> None:
        if self.writer is not None:
            for tag, value in _scalars(result, split, skip=("n",)).items():
                self.writer.add_scalar(tag, value, trainer.iteration)

    def on_checkpoint(self, trainer: Trainer) -> None:
        if self.writer is not None:  # what a crash after a checkpoint would lose otherwise
            self.writer.flush()

    def on_end(self, trainer: Trainer, result: RunResult) -> None:
        if self.writer is None:
            return
        metrics = _final_scalars(result) or {"final/iterations": float(trainer.iteration)}
        self.writer.add_hparams(flat_config(trainer.config.to_dict()), metrics, run_name=".")
        self.writer.close()
        self.writer = None


class MLflowLogger(TrainingHook):
    """Params, metrics, spectra and the final checkpoint in an MLflow run (see the module
    docstring for the tracking URI and experiment)."""

    def __init__(self) -> None:
        require_extra("mlflow", "mlflow", "--log mlflow")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()
        self.run_id: str | None = None

    def on_start(self, trainer: Trainer) -> None:
        if not trainer.dist.is_main:
            return
        from mlflow.entities import Param

        saved = trainer.run_dir / _MLFLOW_FILE
        uri = self.client.tracking_uri
        if saved.is_file():
            old = json.loads(saved.read_text(encoding="utf-8"))
            if old.get("tracking_uri") == uri:
                self.run_id = str(old["run_id"])
                self.client.update_run(self.run_id, status="RUNNING")
                return
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "spectral-probe")
        exp = self.client.get_experiment_by_name(name)
        exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(name)
        run = self.client.create_run(
            exp_id,
            run_name=trainer.run_dir.path.name,
            tags={"spectral_probe.run_dir": str(trainer.run_dir.path.resolve())},
        )
        self.run_id = run.info.run_id
        params = [Param(k, str(v)[:500]) for k, v in flat_config(trainer.config.to_dict()).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])
        from .._io import write_json

        write_json(saved, {"run_id": self.run_id, "tracking_uri": uri})

    def _metrics(self, values: Mapping[str, float], step: int) -> None:
        if self.run_id is None or not values:
            return
        import time

        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()]
        )

    def on_log(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._metrics(
            _scalars(record, "train", skip=("iteration", "seconds")), int(record["iteration"])
        )

    def on_eval(self, trainer: Trainer, split: str, result: dict[str, Any]) -> None:
        self._metrics(_scalars(result, split, skip=("n",)), trainer.iteration)

    def on_end(self, trainer: Trainer, result: RunResult) -> None:
        if self.run_id is None:
            return
        self._metrics(_final_scalars(result), trainer.iteration)
        rd = trainer.run_dir
        for name in ("config.json", "metrics.jsonl", "final.json"):
            if (rd / name).is_file():
                self.client.log_artifact(self.run_id, str(rd / name))
        if result.status == "finished":
            for name in ("model.safetensors", "model.json"):
                if (rd / name).is_file():
                    self.client.log_artifact(self.run_id, str(rd / name), artifact_path="model")
        if not result.spectra.empty:
            self._log_spectra(self.run_id, result)
        self.client.set_terminated(
            self.run_id, "FINISHED" if result.status == "finished" else "KILLED"
        )
        self.run_id = None

    def _log_spectra(self, run_id: str, result: RunResult) -> None:
        from ..plotting import save_figure
        from .figures import plot_spectrum_over_time

        with tempfile.TemporaryDirectory() as tmp:
            table = Path(tmp) / "spectra.csv"
            result.spectra.to_csv(table, index=False)
            figure = Path(tmp) / "spectrum_over_time.png"
            save_figure(plot_spectrum_over_time(result), figure)
            self.client.log_artifact(run_id, str(table), artifact_path="spectra")
            self.client.log_artifact(run_id, str(figure), artifact_path="spectra")


class CSVLogger(TrainingHook):
    """``metrics.csv`` and ``spectra.csv`` in the run directory at the end (finished or
    interrupted): the tidy tables of :class:`~spectral_probe.training.RunResult`."""

    def on_end(self, trainer: Trainer, result: RunResult) -> None:
        if trainer.dist.is_main:
            result.to_csv(trainer.run_dir.path)
