"""The LASER search as a sweep: (block, matrix type, keep) cells, each truncated and evaluated.

Sharma et al. (ICLR 2024) search for the matrix whose rank reduction helps most on held-out
data. Each cell here writes a truncated copy of the model
(:func:`~spectral_probe.analysis.truncate.truncate_model`: the matrix ``TYPE`` of block
``LAYER`` at ``ceil(keep * min(m, n))``), evaluates it, writes ``final.json`` and deletes the
copy (``keep_models`` keeps it). One more cell evaluates the model as it is (``layer`` and
``type`` empty, ``keep`` 1), the baseline every cell is read against.

The evaluation is either the perplexity of the model on a text file with the model's own
tokenizer (:func:`perplexity`), or a command run with ``{model}`` replaced by the truncated
directory, whose last number on stdout is the metric (lower is better unless the user reads it
otherwise).

Cells run through the sweep executors of :mod:`spectral_probe.training.sweep` (``inline``,
``local`` processes, ``slurm`` job arrays). A cell's run id hashes its settings; a rerun skips
the cells whose ``final.json`` exists, so the search is resumable.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError
from .laser_cell import LASER_KEY, perplexity, run_laser_cell

__all__ = ["laser_cells", "run_laser_cell", "run_laser_sweep", "perplexity", "LASER_KEY"]

Progress = Callable[[int, int, str], None]


def _num_layers(model: Path) -> int:
    try:
        config = json.loads((model / "config.json").read_text())
        return int(config["num_hidden_layers"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ConfigError(
            f"expected config.json with num_hidden_layers in {model} (or --blocks), found none"
        ) from None


def laser_cells(
    model: str | Path,
    *,
    types: Sequence[str],
    keeps: Sequence[float],
    layers: Sequence[int] | None = None,
    eval_text: str | Path | None = None,
    command: str | None = None,
    max_length: int = 512,
    keep_models: bool = False,
) -> list[dict[str, Any]]:
    """The cells of a LASER search: the baseline, then every (block, type, keep).

    Raises:
        ConfigError: neither or both of ``eval_text`` and ``command``, a keep outside (0, 1],
            an empty axis, a missing model directory or text file.
    """
    from ..analysis.truncate import check_keep

    root = Path(model).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(f"expected a model directory, found nothing at {model}")
    if (eval_text is None) == (command is None):
        raise ConfigError("expected exactly one of --eval TEXT_FILE and --eval-command, found "
                          + ("both" if eval_text is not None else "neither"))  # fmt: skip
    if eval_text is not None and not Path(eval_text).is_file():
        raise ConfigError(f"expected a text file for --eval, found nothing at {eval_text}")
    if command is not None and "{model}" not in command:
        raise ConfigError(f"expected {{model}} in --eval-command, found {command!r}")
    for keep in keeps:
        check_keep(keep)
    blocks = list(range(_num_layers(root))) if layers is None else list(layers)
    if not types or not keeps or not blocks:
        raise ConfigError(
            "expected at least one block, one --type and one --keep, found an empty axis"
        )
    common = {
        "model": str(root),
        "eval": str(Path(eval_text).resolve()) if eval_text is not None else None,
        "command": command,
        "max_length": max_length,
        "keep_models": keep_models,
    }
    cells = [{**common, "layer": None, "type": None, "keep": 1.0}]
    cells += [
        {**common, "layer": int(layer), "type": wtype, "keep": float(keep)}
        for layer in blocks
        for wtype in types
        for keep in keeps
    ]
    return [{LASER_KEY: cell, "run_id": _run_id(cell)} for cell in cells]


def _run_id(cell: Mapping[str, Any]) -> str:
    digest = hashlib.sha1(json.dumps(cell, sort_keys=True).encode()).hexdigest()[:8]
    if cell["layer"] is None:
        return f"laser-base-{digest}"
    kind = re.sub(r"[^A-Za-z0-9]+", "_", str(cell["type"]))
    return f"laser-L{cell['layer']}-{kind}-k{cell['keep']:g}-{digest}"


def run_laser_sweep(
    cells: Sequence[Mapping[str, Any]],
    out: str | Path,
    *,
    executor: str = "local",
    max_parallel: int = 1,
    slurm: Mapping[str, Any] | None = None,
    wait: bool = True,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Run the cells not finished under ``out``; one row per cell with its metric.

    ``executor`` is one of the sweep executors (``inline``, ``local``, ``slurm``).
    """
    from .._jobs import check_executor, run_jobs
    from .sweep import run_cell

    check_executor(executor)
    out_dir = Path(out)
    rows: dict[str, dict[str, Any]] = {}
    pending: list[tuple[dict[str, Any], str, list[str]]] = []
    for config in cells:
        cell, run_id = config[LASER_KEY], str(config["run_id"])
        final = out_dir / run_id / "final.json"
        row = {"run_id": run_id, "layer": cell["layer"], "type": cell["type"], "keep": cell["keep"]}
        if final.is_file():
            saved = json.loads(final.read_text())
            row |= {"status": "skipped", "value": saved.get(saved.get("metric_name", "metric"))}
        else:
            row["status"] = "planned"
            pending.append((dict(config), str(out_dir / run_id), []))
        rows[run_id] = row
    if not dry_run and pending:
        out_dir.mkdir(parents=True, exist_ok=True)
        done = len(rows) - len(pending)

        def record(run_id: str, outcome: dict[str, Any]) -> None:
            nonlocal done
            metric = outcome.get("perplexity", outcome.get("metric"))
            rows[run_id] |= {"status": outcome.get("status"), "value": metric}
            if "error" in outcome:
                rows[run_id]["error"] = outcome["error"]
            done += 1
            if progress is not None:
                progress(done, len(rows), run_id)

        run_jobs(
            run_cell,
            [(Path(run_dir).name, (cfg, run_dir, imports)) for cfg, run_dir, imports in pending],
            record,
            executor=executor,
            folder=out_dir / ".submitit",
            parallel=max_parallel,
            slurm=slurm,
            wait=wait,
        )
    frame = pd.DataFrame(list(rows.values()))
    if "value" not in frame:
        frame["value"] = math.nan
    return frame
