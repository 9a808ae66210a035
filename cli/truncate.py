"""``spectral-probe truncate``: LASER's layer-selective rank reduction, written as a new model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, handles_errors, print_json, print_records, progress_bar

app = typer.Typer()


@app.command("truncate")
@handles_errors
def truncate_cmd(
    model: Annotated[
        str, typer.Argument(help="A transformers directory of safetensors (sharded or not).")
    ],
    layers: Annotated[
        str,
        typer.Option(
            "--layers",
            help="Regex (re.search) over tensor names, "
            r"e.g. 'layers\.(2[4-9]|3[01])\.mlp\.down_proj'.",
            show_default=False,
        ),
    ],
    keep: Annotated[
        float,
        typer.Option(
            "--keep",
            help="Fraction of the full rank min(m, n) kept, in (0, 1].",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="The new model directory (new or empty).", show_default=False
        ),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="Print what was replaced as JSON on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Replace the named matrices by their rank-ceil(keep * min(m, n)) approximations (LASER).

    Writes a directory transformers loads like the input: the same shards, the index, the
    config and tokenizer files, and laser.json recording what was replaced. Built aside and
    renamed into place: nothing is left at --out on failure.
    """
    from spectral_probe.analysis.truncate import check_keep, truncate_model

    check_keep(keep)
    with progress_bar("truncating matrices", quiet=quiet) as update:
        result = truncate_model(model, out, layers=layers, keep=keep, progress=update)
    if json_out:
        print_json(result.to_dict())
        return
    rows = [
        {"tensor": name, "shape": "x".join(map(str, info["shape"])), "rank": info["rank"],
         "full rank": info["full_rank"]}
        for name, info in result.replaced.items()
    ]  # fmt: skip
    print_records(
        rows, ["tensor", "shape", "rank", "full rank"], title=f"keep {keep:g} of the rank"
    )
    console.print(f"wrote the truncated model to [bold]{out}[/]")


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


@app.command("laser-sweep")
@handles_errors
def laser_sweep_cmd(
    model: Annotated[
        str, typer.Argument(help="A transformers directory of safetensors (sharded or not).")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder of the cells' run directories.", show_default=False
        ),
    ],
    eval_text: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="Text file: each cell's metric is the perplexity on it, "
            "with the model's tokenizer.",
            show_default=False,
        ),
    ] = None,
    eval_command: Annotated[
        str | None,
        typer.Option(
            "--eval-command",
            help="Instead of --eval: a command with {model} in it; "
            "the last number it prints is the metric.",
            show_default=False,
        ),
    ] = None,
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type", help="Matrix type, repeatable [default: mlp.down_proj].", show_default=False
        ),
    ] = None,
    keeps: Annotated[
        list[float] | None,
        typer.Option(
            "--keep",
            help="Fraction of the rank kept, repeatable [default: 0.1 and 0.01].",
            show_default=False,
        ),
    ] = None,
    blocks: Annotated[
        str | None,
        typer.Option(
            "--blocks",
            help="Blocks to try, e.g. 0,3,20-23 [default: every block].",
            show_default=False,
        ),
    ] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per perplexity window.")] = 512,
    executor: Annotated[
        str, typer.Option(help="inline (this process), local (processes) or slurm.")
    ] = "local",
    max_parallel: Annotated[int, typer.Option(help="Cells at once.")] = 1,
    slurm: Annotated[
        list[str] | None,
        typer.Option(
            "--slurm",
            help="SLURM parameter KEY=VALUE, repeatable (as sweep --slurm).",
            show_default=False,
        ),
    ] = None,
    keep_models: Annotated[
        bool, typer.Option("--keep-models", help="Keep each cell's truncated model.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List the cells and whether they are done.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print the cells as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
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
            executor=executor,
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
