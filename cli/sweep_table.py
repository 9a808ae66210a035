"""``spectral-probe sweep-table``: finished runs aggregated, Table-2 style (or Tables 3 and 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import console, fail, handles_errors, print_json, stdout

app = typer.Typer()


@app.command("sweep-table")
@handles_errors
def sweep_table_cmd(
    runs: Annotated[
        Path, typer.Argument(help="Folder holding run directories (any depth).", show_default=False)
    ],
    paper: Annotated[
        bool, typer.Option("--paper", help="Put the paper's Table 2 numbers beside each cell.")
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option("--markdown", help="Markdown table, rates as columns (the default output)."),
    ] = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="CSV of the cells (mean, std, n per cell) on stdout.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="The cells as JSON on stdout.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also write runs.csv, cells.csv and table.md here."),
    ] = None,
    table3: Annotated[
        bool,
        typer.Option(
            "--table3",
            help="The permuted-pixel runs as the paper's Table 3: task A / task B / average per method, beside the paper's numbers.",
        ),
    ] = False,
    table4: Annotated[
        bool,
        typer.Option(
            "--table4",
            help="The GLUE (text-classification) runs as the paper's Table 4: dev accuracy per task and their average per model and method, beside the paper's BERT-base numbers.",
        ),
    ] = False,
) -> None:
    """Aggregate finished runs to mean ± std of test top-1 (%) per cell, Table-2 style.

    A cell is everything but the seed: dataset, method, rate and any field or
    hyperparameter that varies across the runs. --paper adds the paper's numbers;
    --table3 and --table4 lay out the scenario runs as the paper's Tables 3 and 4.
    """
    from spectral_probe._io import atomic_write_text, staged_dir
    from spectral_probe.training import sweep_table
    from spectral_probe.training import table3 as make_table3
    from spectral_probe.training import table4 as make_table4

    if table3 and table4:
        fail("expected one of --table3 and --table4, found both")
    if table3:
        table: Any = make_table3(runs)
    elif table4:
        table = make_table4(runs)
    else:
        table = sweep_table(runs, paper=paper)
    if out is not None:
        with staged_dir(out) as tmp:
            table.to_csv(tmp)
            atomic_write_text(tmp / "table.md", table.to_markdown())
    if csv_out:
        stdout.file.write(table.cells.to_csv(index=False))
    elif json_out:
        print_json({"keys": list(table.keys), "cells": table.cells.to_dict(orient="records")})
    else:
        stdout.file.write(table.to_markdown())
    if table.cells.empty:
        console.print(f"no finished runs under {runs}")
