"""``spectral-probe sweep laser`` (also ``laser-sweep MODEL``): the LASER search as a sweep.

One cell per (block, matrix type, keep) plus the model as it is, run through the sweep
executors (:mod:`spectral_probe.training.laser`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import handles_errors, print_json, print_records, progress_bar
from ._training import Executor, QuietOpt, SlurmOpt

app = typer.Typer()

ModelArg = Annotated[
    str, typer.Argument(help="A transformers directory of safetensors (sharded or not).")
]
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        help="A transformers directory of safetensors (sharded or not).",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path,
    typer.Option("--out", "-o", help="Folder of the cells' run directories.", show_default=False),
]
EvalOpt = Annotated[
    Path | None,
    typer.Option(
        "--eval",
        help="Text file: each cell's metric is the perplexity on it, with the model's tokenizer.",
        show_default=False,
    ),
]
EvalCommandOpt = Annotated[
    str | None,
    typer.Option(
        "--eval-command",
        help="Instead of --eval: a command with {model} in it; the last number it prints is the metric.",
        show_default=False,
    ),
]
TypeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--type", help="Matrix type, repeatable [default: mlp.down_proj].", show_default=False
    ),
]
KeepOpt = Annotated[
    list[float] | None,
    typer.Option(
        "--keep",
        help="Fraction of the rank kept, repeatable [default: 0.1 and 0.01].",
        show_default=False,
    ),
]
BlocksOpt = Annotated[
    str | None,
    typer.Option(
        "--blocks", help="Blocks to try, e.g. 0,3,20-23 [default: every block].", show_default=False
    ),
]
MaxLengthOpt = Annotated[int, typer.Option(help="Tokens per perplexity window.")]
ExecutorOpt = Annotated[
    Executor,
    typer.Option(help="Where the cells run: inline (this process), local (processes) or slurm."),
]
MaxParallelOpt = Annotated[int, typer.Option(help="Cells at once.")]
KeepModelsOpt = Annotated[
    bool, typer.Option("--keep-models", help="Keep each cell's truncated model.")
]
DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="List the cells and whether they are done.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the cells as JSON.")]


@handles_errors
def laser_cmd(
    model: ModelOpt,
    out: OutOpt,
    eval_text: EvalOpt = None,
    eval_command: EvalCommandOpt = None,
    types: TypeOpt = None,
    keeps: KeepOpt = None,
    blocks: BlocksOpt = None,
    max_length: MaxLengthOpt = 512,
    executor: ExecutorOpt = Executor.local,  # type: ignore[attr-defined]
    max_parallel: MaxParallelOpt = 1,
    slurm: SlurmOpt = None,
    keep_models: KeepModelsOpt = False,
    dry_run: DryRunOpt = False,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """The LASER search: truncate one matrix type of one block at a time, evaluate each copy.

    One cell per (block, type, keep) plus the model as it is (the baseline). Cells finished
    under --out (final.json) are skipped, so the search resumes where it stopped.
    """
    from spectral_probe.training import parse_hp
    from spectral_probe.training.laser import laser_cells, run_laser_sweep

    cells = laser_cells(
        model,
        types=types or ["mlp.down_proj"],
        keeps=keeps or [0.1, 0.01],
        layers=_blocks(blocks),
        eval_text=eval_text,
        command=eval_command,
        max_length=max_length,
        keep_models=keep_models,
    )
    with progress_bar("laser cells", quiet=quiet or dry_run) as update:
        frame = run_laser_sweep(
            cells,
            out,
            executor=executor.value,
            max_parallel=max_parallel,
            slurm=parse_hp(slurm or []),
            dry_run=dry_run,
            progress=update,
        )
    if json_out:
        print_json(frame.to_dict(orient="records"))
    else:
        print_records(
            frame.to_dict(orient="records"),
            ["run_id", "layer", "type", "keep", "status", "value"],
            title=f"LASER cells of {model} ({'perplexity' if eval_text else 'metric'})",
        )
    if (frame["status"] == "failed").any():
        raise typer.Exit(1)


def _model_positional(fn: Callable[..., None]) -> Callable[..., None]:
    """``fn`` with its ``--model`` option taken as the first argument instead."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        fn(*args, **kwargs)

    sig = inspect.signature(fn, eval_str=True)
    params = [
        p.replace(annotation=ModelArg) if p.name == "model" else p for p in sig.parameters.values()
    ]
    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {**fn.__annotations__, "model": "ModelArg"}
    return wrapper


#: ``laser-sweep MODEL --out ...``: the older spelling of ``sweep laser --model MODEL``.
app.command("laser-sweep")(_model_positional(laser_cmd))


def _blocks(text: str | None) -> list[int] | None:
    """``0,3,5-7`` -> ``[0, 3, 5, 6, 7]`` (validated here: it is only parsing)."""
    from spectral_probe.errors import ConfigError

    if text is None:
        return None
    blocks: list[int] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        lo, sep, hi = part.partition("-")
        try:
            blocks += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
        except ValueError:
            raise ConfigError(f"expected --blocks like 0,3,5-7, found {text!r}") from None
    return blocks
