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
