"""Sweeps: a TOML grid of fine-tuning runs, run through submitit, restartable.

A sweep file::

    [sweep]
    name = "table2"
    out = "runs/table2"                 # default output folder (the CLI's --out wins)

    [base]                              # FinetuneConfig fields shared by every cell
    model = "torchvision:resnet50:IMAGENET1K_V1"
    preset = "paper"

    [grid]                              # one axis per field; the cells are the product
    data = ["cub200:/data/CUB_200_2011", { data = "stanford-dogs:/data/dogs", lr = 0.001 }]
    method = ["l2", "l2+bss", "l2-sp", "l2-sp+bss"]
    rate = ["15%", "30%", "50%", "100%"]
    seed = [0, 1, 2, 3, 4]

    [grid.hp]                           # hyperparameter axes, applied only to cells whose
    "bss.k" = [1, 2, 4, 8]              # method has that term (so "l2" is not repeated)

    [grid.task_options]                 # task-option axes (``[base.task_options]`` for fixed
    max_length = [64, 128]              # ones), merged into the base's, checked by the task

    [executor]
    kind = "local"                      # "local" (processes), "slurm", or "inline"
    max_parallel = 1
    imports = ["my_models"]             # modules imported in each job (custom registries)
    [executor.slurm]                    # passed to submitit as slurm_<key> / plain keys
    partition = "gpu"
    gpus_per_node = 1
    timeout_min = 720

An axis value that is a table sets several fields at once (a dataset with its own learning
rate). ``${NAME}`` in a string is replaced by the environment variable ``NAME`` (e.g. the
folder holding the datasets: ``data = ["cub200:${DATA}/CUB_200_2011"]``). A bare name such as
``table2`` names a sweep shipped with the package (:func:`list_packaged_sweeps`). Every cell is a resolved :class:`~spectral_probe.training.FinetuneConfig` whose run
directory is ``OUT/<run_id>``; the run id hashes the config, so a restarted sweep finds the
finished cells (``final.json``) and skips them, and continues interrupted ones from their
training state.
"""

from __future__ import annotations

import importlib
import itertools
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import write_json
from .._jobs import EXECUTORS, run_jobs
from ..errors import ConfigError, SpectralProbeError, TrainingDivergedError
from .config import FinetuneConfig

__all__ = [
    "SweepSpec",
    "SweepReport",
    "load_sweep",
    "list_packaged_sweeps",
    "run_sweep",
    "run_cell",
    "EXECUTORS",
]

_SECTIONS = {"sweep", "base", "grid", "executor"}


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep file (see the module docstring).

    Attributes:
        name: the sweep's name.
        base: config fields shared by every cell.
        grid: one list of values per config field (a value may be a table of fields).
        hp_grid: one list of values per qualified hyperparameter.
        task_options_grid: one list of values per task option.
        out: the default output folder, if the file names one.
        executor: the ``[executor]`` table.
        source: the file it was read from.
    """

    name: str
    base: Mapping[str, Any]
    grid: Mapping[str, Sequence[Any]]
    hp_grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    task_options_grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    out: str | None = None
    executor: Mapping[str, Any] = field(default_factory=dict)
    source: Path | None = None

    def configs(self) -> list[FinetuneConfig]:
        """Every cell's resolved config, in grid order, without duplicates (by run id)."""
        from ..regularizers import list_regularizers, parse_method
        from .tasks import get_task, list_tasks

        registry = {r.name: dict(r.hyperparameters) for r in list_regularizers()}
        axes = [[(key, v) for v in values] for key, values in self.grid.items()]
        axes += [
            [(f"task_options.{key}", v) for v in values]
            for key, values in self.task_options_grid.items()
        ]
        hp_axes = [[(key, v) for v in values] for key, values in self.hp_grid.items()]
        seen: dict[str, FinetuneConfig] = {}
        for i, combo in enumerate(itertools.product(*axes) if axes else [()]):
            fields_: dict[str, Any] = {
                k: v for k, v in self.base.items() if k not in ("hp", "task_options")
            }
            hp = dict(self.base.get("hp", {}))
            opts = dict(self.base.get("task_options", {}))
            for key, value in combo:
                if key.startswith("task_options."):
                    opts[key.partition(".")[2]] = value
                elif key == "task_options" and isinstance(value, Mapping):
                    opts.update(value)
                elif isinstance(value, Mapping):
                    fields_.update(
                        {k: v for k, v in value.items() if k not in ("hp", "task_options")}
                    )
                    hp.update(value.get("hp", {}))
                    opts.update(value.get("task_options", {}))
                else:
                    fields_[key] = value
            try:
                terms = parse_method(str(fields_.get("method", "l2"))).names
                known = {t: registry[t] for t in terms}
                for hp_combo in itertools.product(*hp_axes) if hp_axes else [()]:
                    cell_hp = dict(hp)
                    for key, value in hp_combo:
                        term, _, name = key.rpartition(".")
                        if (term in known and name in known[term]) or (
                            not term and any(name in h for h in known.values())
                        ):
                            cell_hp[key] = value
                    cfg = FinetuneConfig.from_dict(
                        {**fields_, "hp": cell_hp, "task_options": opts}
                    ).resolve()
                    if cfg.task in list_tasks():  # a task of executor.imports registers in the job
                        get_task(cfg.task).check_options(cfg.task_options)
                    seen.setdefault(cfg.run_id, cfg)
            except SpectralProbeError as exc:
                where = ", ".join(f"{k}={v!r}" for k, v in combo) or "base"
                raise ConfigError(f"sweep cell {i + 1} ({where}): {exc}") from None
        return list(seen.values())


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: Any, where: Path) -> Any:
    """``${NAME}`` in strings (at any depth) replaced by the environment variable ``NAME``."""
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in os.environ:
                raise ConfigError(
                    f"expected the environment variable {m.group(1)} (used in {where}), found it unset"
                )
            return os.environ[m.group(1)]

        return _VAR.sub(sub, value)
    if isinstance(value, list):
        return [_expand(v, where) for v in value]
    if isinstance(value, dict):
        return {k: _expand(v, where) for k, v in value.items()}
    return value


def list_packaged_sweeps() -> list[str]:
    """Names of the sweep files shipped with the package (``table2``, ``table3``, ``table4``, ``figure3``, ``demo``)."""
    from importlib import resources

    root = resources.files("spectral_probe") / "resources"
    return sorted(p.name[: -len(".toml")] for p in root.iterdir() if p.name.endswith(".toml"))


def load_sweep(path: str | Path) -> SweepSpec:
    """Read a sweep TOML file, or a packaged one by name (see the module docstring)."""
    path = Path(path)
    if not path.is_file() and path.suffix == "" and str(path) in list_packaged_sweeps():
        from importlib import resources

        text = (resources.files("spectral_probe") / "resources" / f"{path}.toml").read_text(
            encoding="utf-8"
        )
    elif not path.is_file():
        known = ", ".join(list_packaged_sweeps())
        raise ConfigError(
            f"expected a sweep file at {path} (or a packaged sweep: {known}), found nothing"
        )
    else:
        text = path.read_text(encoding="utf-8")
    try:
        data = _expand(tomllib.loads(text), path)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from None
    unknown = sorted(set(data) - _SECTIONS)
    if unknown:
        raise ConfigError(f"expected sections {sorted(_SECTIONS)} in {path}, found {unknown}")
    grid = dict(data.get("grid", {}))
    hp_grid = dict(grid.pop("hp", {}))
    opt_grid = dict(grid.pop("task_options")) if isinstance(grid.get("task_options"), dict) else {}
    for key, values in [*grid.items(), *hp_grid.items(), *opt_grid.items()]:
        if not isinstance(values, list) or not values:
            raise ConfigError(
                f"expected a non-empty list for grid axis {key!r} in {path}, found {values!r}"
            )
    meta = data.get("sweep", {})
    executor = dict(data.get("executor", {}))
    kind = executor.get("kind", "local")
    if kind not in EXECUTORS:
        raise ConfigError(f"expected executor kind in {list(EXECUTORS)}, found {kind!r}")
    return SweepSpec(
        name=str(meta.get("name", path.stem)),
        base=dict(data.get("base", {})),
        grid=grid,
        hp_grid=hp_grid,
        task_options_grid=opt_grid,
        out=meta.get("out"),
        executor=executor,
        source=path,
    )


def run_cell(
    config: Mapping[str, Any], run_dir: str, imports: Sequence[str] = ()
) -> dict[str, Any]:
    """Run one cell (in a job process): resume or start it, return a short summary.

    A diverged run is a result, not a failure: ``{"status": "diverged", ...}``.
    """
    for module in imports:
        importlib.import_module(module)
    if "laser" in config:  # a LASER cell (spectral_probe.training.laser), not a fine-tune
        from .laser_cell import run_laser_cell

        return run_laser_cell(config, run_dir)
    from .._alloc import keep_freed_memory
    from .engine import finetune

    keep_freed_memory()  # a job process is the toolkit's own, as `spectral-probe` is

    cfg = FinetuneConfig.from_dict(config)
    try:
        if (
            cfg.task == "permuted"
        ):  # two runs: task A (shared by the cells of a seed), then task B here
            from .permuted import run_permuted

            pair = run_permuted(cfg, Path(run_dir).parent, run_dir=run_dir)
            result = pair.task_b if pair.task_b is not None else pair.task_a
        else:
            result = finetune(cfg, run_dir, resume="auto")
    except TrainingDivergedError as exc:
        return {"run_id": Path(run_dir).name, "status": "diverged", "error": str(exc)}
    return {"run_id": result.run_id, "status": result.status, "test_accuracy": result.test_accuracy}


@dataclass(frozen=True)
class SweepReport:
    """What a sweep did: one row per cell (``run_id``, ``status``, ``test_accuracy``, ``error``).

    ``status`` is ``skipped`` (already finished), ``finished``, ``interrupted``, ``diverged``,
    ``failed`` (an error; see ``error``), ``submitted`` (not waited for) or ``planned``
    (dry run).
    """

    out: Path
    cells: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Number of cells per status."""
        return {str(k): int(v) for k, v in self.cells["status"].value_counts().items()}


Progress = Callable[[int, int, str], None]


def run_sweep(
    spec: SweepSpec,
    out: str | Path | None = None,
    *,
    executor: str | None = None,
    max_parallel: int | None = None,
    slurm: Mapping[str, Any] | None = None,
    dry_run: bool = False,
    wait: bool = True,
    progress: Progress | None = None,
    log: Sequence[str] | None = None,
) -> SweepReport:
    """Run every cell of ``spec`` not yet finished under ``out`` (default: the spec's ``out``).

    Args:
        spec: the parsed sweep.
        out: folder holding one run directory per cell.
        executor: ``local`` (submitit's LocalExecutor: one process per cell), ``slurm``
            (submitit's SLURM executor, a job array) or ``inline`` (in this process, in order).
        max_parallel: cells running at once (local) or the array's parallelism (slurm).
        slurm: SLURM parameters (``partition``, ``gpus_per_node``, ``timeout_min``...).
        dry_run: only list the cells and their status.
        wait: wait for SLURM jobs to end (local and inline always wait).
        progress: ``progress(done, total, run_id)`` after each cell.
        log: experiment trackers of every cell (``tensorboard``, ``mlflow``, ``csv``),
            replacing the file's ``log``; they do not change the run ids.
    """
    out_dir = Path(out or spec.out or "runs")
    opts = dict(spec.executor)
    kind = executor or opts.get("kind", "local")
    if kind not in EXECUTORS:
        raise ConfigError(f"expected executor in {list(EXECUTORS)}, found {kind!r}")
    parallel = int(max_parallel or opts.get("max_parallel", 1))
    imports = list(opts.get("imports", []))
    for module in imports:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(
                f"expected an importable module in executor.imports, found {module!r} ({exc})"
            ) from None
    from .log_targets import check_loggers
    from .loggers import require_loggers

    configs = spec.configs()
    if log is not None:
        configs = [c.with_overrides(log=check_loggers(log)) for c in configs]
    require_loggers(dict.fromkeys(n for c in configs for n in c.log))  # one line, before any job
    rows = []
    pending = []
    for cfg in configs:
        run_dir = out_dir / cfg.run_id
        done = (run_dir / "final.json").is_file()
        rows.append({"run_id": cfg.run_id, "status": "skipped" if done else "planned"})
        if not done:
            pending.append((cfg, run_dir))
    if dry_run:
        return SweepReport(out_dir, pd.DataFrame(rows))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        out_dir / "sweep.json",
        {"name": spec.name, "source": spec.source, "runs": [c.run_id for c in configs]},
    )
    status = {r["run_id"]: r for r in rows}
    jobs = [(c.to_dict(), str(d), imports) for c, d in pending]
    done_count = len(configs) - len(pending)

    def record(run_id: str, outcome: dict[str, Any]) -> None:
        nonlocal done_count
        status[run_id].update(outcome)
        done_count += 1
        if progress is not None:
            progress(done_count, len(configs), run_id)

    run_jobs(
        run_cell,
        [(Path(run_dir).name, (cfg, run_dir, imps)) for cfg, run_dir, imps in jobs],
        record,
        executor=kind,
        folder=out_dir / ".submitit",
        parallel=parallel,
        slurm=dict(opts.get("slurm", {}), **(slurm or {})),
        wait=wait,
    )
    return SweepReport(out_dir, pd.DataFrame(list(status.values())))
