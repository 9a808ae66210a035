"""Run directories: the files a fine-tuning run leaves, and reading them back.

::

    RUN_DIR/
      config.json          {"format": "spectral-probe-run", "run_id", "config": {...resolved...},
                            "data": {...sizes...}, "world_size", "device", "versions", "created"}
      metrics.jsonl        one JSON object per log interval (see docs/training.md)
      final.json           {"status": "finished" | "diverged", "test": {...}, "val": {...}, ...}
      model.safetensors    the evaluated model, in the toolkit's checkpoint format ...
      model.json           ... with its sidecar (base = the pre-trained spec, head, classes)
      best.safetensors     (select = "best") the best-validation weights so far, + best.json
      train_state.pt       resumable training state (removed after a finished run unless
                           keep_train_state)

Every file is written atomically; ``final.json`` is written last, so its presence means
the run is over (finished or diverged) and sweeps skip it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from .._io import atomic_write_text, write_json
from .._results import TidyResult
from ..errors import ConfigError, OutputError
from .config import FinetuneConfig, config_diff

__all__ = ["RunDir", "RunResult", "load_run", "iter_run_records", "RUN_FORMAT"]

RUN_FORMAT = "spectral-probe-run"


class RunDir:
    """Paths and file operations of one run directory."""

    CONFIG = "config.json"
    METRICS = "metrics.jsonl"
    FINAL = "final.json"
    MODEL = "model.safetensors"
    BEST = "best.safetensors"
    STATE = "train_state.pt"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    @property
    def exists(self) -> bool:
        """Whether the directory holds a run (a ``config.json``)."""
        return (self.path / self.CONFIG).is_file()

    @property
    def finished(self) -> bool:
        """Whether the run is over (``final.json`` present)."""
        return (self.path / self.FINAL).is_file()

    @property
    def has_state(self) -> bool:
        """Whether a resumable training state is present."""
        return (self.path / self.STATE).is_file()

    def read_meta(self) -> dict[str, Any]:
        """The whole ``config.json``."""
        path = self.path / self.CONFIG
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(
                f"expected a run directory with {self.CONFIG} at {self.path}, found none"
            ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != RUN_FORMAT:
            raise ConfigError(
                f"expected a spectral-probe run's {self.CONFIG} at {path}, found another file"
            )
        return meta

    def read_config(self) -> FinetuneConfig:
        """The run's (resolved) configuration."""
        return FinetuneConfig.from_dict(self.read_meta()["config"])

    def read_final(self) -> dict[str, Any]:
        """``final.json``, or ``{}`` while the run is not over."""
        path = self.path / self.FINAL
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None

    def read_metrics(self) -> list[dict[str, Any]]:
        """The records of ``metrics.jsonl`` (an unreadable line is skipped)."""
        path = self.path / self.METRICS
        if not path.is_file():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def write_meta(self, meta: dict[str, Any]) -> None:
        """Write ``config.json``."""
        write_json(self.path / self.CONFIG, {"format": RUN_FORMAT, "version": 1, **meta})

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Rewrite ``metrics.jsonl`` atomically with ``records``."""
        from .._io import to_jsonable

        text = "".join(json.dumps(to_jsonable(r), allow_nan=False) + "\n" for r in records)
        atomic_write_text(self.path / self.METRICS, text)

    def write_final(self, payload: dict[str, Any]) -> None:
        """Write ``final.json`` (marks the run as over)."""
        write_json(self.path / self.FINAL, payload)

    def check_compatible(self, config: FinetuneConfig) -> None:
        """Refuse, in one line naming the differing keys, a config other than the run's."""
        saved = self.read_config()
        diff = config_diff(saved, config)
        if diff:
            shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
            raise ConfigError(
                f"expected the configuration of the run in {self.path}, found different values "
                f"(saved != requested): {shown}"
            )

    def open_mode(self, config: FinetuneConfig, resume: bool | str) -> str:
        """How a run of ``config`` starts here: ``"fresh"``, ``"resume"`` or ``"done"``.

        ``resume`` is :func:`~spectral_probe.training.finetune`'s: ``"auto"`` takes what is
        there, ``True`` requires a run to resume, ``False`` a new or empty directory.

        Raises:
            ConfigError: the directory cannot be written, holds another config's run, or
                does not match ``resume``.
        """
        self.check_writable()
        if not self.exists:
            if resume is True:
                raise ConfigError(f"expected a run to resume in {self.path}, found none")
            return "fresh"
        self.check_compatible(config)
        if self.finished:
            if resume is False:
                status = self.read_final().get("status", "finished")
                raise ConfigError(
                    f"expected a new run directory, found a {'finished' if status == 'finished' else status} "
                    f"run in {self.path}"
                )
            return "done"
        if resume is False:
            raise ConfigError(
                f"expected a new run directory, found an unfinished run in {self.path}: pass --resume"
            )
        return "resume" if self.has_state else "fresh"

    def check_writable(self) -> None:
        """Refuse a path that is a file, or a non-empty directory that holds no run."""
        if self.path.exists() and not self.path.is_dir():
            raise OutputError(f"expected a run directory, found a file: {self.path}")
        if (
            self.path.is_dir()
            and not self.exists
            and any(p for p in self.path.iterdir() if not p.name.startswith("."))
        ):
            raise OutputError(
                f"expected an empty or new run directory, found other files in {self.path}"
            )


@dataclass(frozen=True)
class RunResult(TidyResult):
    """A run directory read back (what :func:`~spectral_probe.training.finetune` returns).

    Attributes:
        run_dir: the directory.
        config: the resolved configuration.
        status: ``"finished"``, ``"diverged"``, ``"interrupted"`` (a resumable state and no
            ``final.json``) or ``"incomplete"`` (neither).
        final: ``final.json`` (empty unless finished or diverged).
        metrics: one row per ``metrics.jsonl`` record, without the singular values.
        spectra: tidy ``(iteration, index, sigma)``: the feature matrix's singular values
            logged during training, ``index`` 0 the largest.
        meta: the rest of ``config.json`` (data sizes, world size, versions).
    """

    run_dir: Path
    config: FinetuneConfig
    status: str
    final: dict[str, Any]
    metrics: pd.DataFrame
    spectra: pd.DataFrame
    meta: dict[str, Any]

    @property
    def run_id(self) -> str:
        """The directory's name."""
        return self.run_dir.name

    @property
    def test_accuracy(self) -> float | None:
        """Top-1 accuracy on the test split (``None`` until finished)."""
        return self.final.get("evals", {}).get("test", {}).get("accuracy")

    @property
    def val_accuracy(self) -> float | None:
        """Top-1 accuracy on the validation split (``None`` without one)."""
        return (self.final.get("val") or {}).get("accuracy")

    @property
    def model_path(self) -> Path:
        """The fine-tuned model (toolkit checkpoint), readable by ``load_model``."""
        return self.run_dir / RunDir.MODEL

    def load_model(self) -> Any:
        """The fine-tuned model as a :class:`~spectral_probe.models.LoadedModel`."""
        from ..models import load_checkpoint

        return load_checkpoint(self.model_path)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form: config, status, final and metrics records."""
        return {
            "run_dir": str(self.run_dir),
            "run_id": self.run_id,
            "status": self.status,
            "config": self.config.to_dict(),
            "final": self.final,
            "metrics": self.metrics.to_dict(orient="records"),
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON."""
        return write_json(path, self.to_dict())

    #: ``to_frame()``: one row per ``metrics.jsonl`` record
    main_table: ClassVar[str] = "metrics"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``metrics`` and ``spectra``."""
        return {"metrics": self.metrics, "spectra": self.spectra}

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``metrics.csv`` and ``spectra.csv`` into ``directory``."""
        from .._results import write_tables_csv

        return write_tables_csv(directory, self.tables())


def _spectra(records: list[dict[str, Any]]) -> pd.DataFrame:
    rows = [
        (rec["iteration"], i, float(s))
        for rec in records
        if rec.get("sv")
        for i, s in enumerate(rec["sv"])
    ]
    return pd.DataFrame(rows, columns=["iteration", "index", "sigma"])


def load_run(path: str | Path) -> RunResult:
    """Read a run directory written by :func:`~spectral_probe.training.finetune`."""
    rd = RunDir(path)
    meta = rd.read_meta()
    config = FinetuneConfig.from_dict(meta.pop("config"))
    final = rd.read_final()
    records = rd.read_metrics()
    if final:
        status = str(final.get("status", "finished"))
    else:
        status = "interrupted" if rd.has_state else "incomplete"
    metrics = pd.DataFrame([{k: v for k, v in r.items() if k != "sv"} for r in records])
    return RunResult(
        run_dir=rd.path,
        config=config,
        status=status,
        final=final,
        metrics=metrics,
        spectra=_spectra(records),
        meta=meta,
    )


def iter_run_records(root: str | Path) -> Iterator[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """``(run_dir, config.json, final.json)`` of every ended run under ``root`` (any depth).

    Unreadable files are skipped (a run being written by another process, say).
    """
    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"expected a folder of runs at {root}, found nothing")
    for final_path in sorted(root.rglob(RunDir.FINAL)):
        run = final_path.parent
        try:
            meta = json.loads((run / RunDir.CONFIG).read_text(encoding="utf-8"))
            final = json.loads(final_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        yield run, meta, final
