"""``spectral-probe plot-runs``: the paper's figures from a folder of runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, fail, handles_errors

app = typer.Typer()


@app.command("plot-runs")
@handles_errors
def plot_runs_cmd(
    runs: Annotated[
        Path, typer.Argument(help="Folder holding run directories (any depth).", show_default=False)
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Write the figures here.")] = Path(
        "figures"
    ),
    spectra: Annotated[
        bool,
        typer.Option(
            help="Figure 3(b,c): feature spectra of each method with and without BSS, from the runs' checkpoints on the test split."
        ),
    ] = True,
    max_batches: Annotated[
        int, typer.Option(help="Batches of the test split per model for the spectra.")
    ] = 10,
    over_time: Annotated[
        bool,
        typer.Option(
            help="Also one figure per run of its logged singular values over the iterations."
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda (for the spectra).")] = "auto",
) -> None:
    """Paper figures from runs: error vs rate (1a), TSVD r (3a), BSS k (3d), spectra with/without BSS (3b,c)."""
    from spectral_probe._io import staged_dir
    from spectral_probe.plotting import save_figure
    from spectral_probe.training import run_figures, sweep_table

    table = sweep_table(runs)
    if table.cells.empty:
        fail(f"expected finished runs under {runs}, found none")
    figures = run_figures(
        table, spectra=spectra, max_batches=max_batches, device=device, over_time=over_time
    )
    with staged_dir(out) as tmp:
        written = [save_figure(fig, tmp / name).name for name, fig in figures]
    console.print(f"wrote {len(written)} figure(s) to [bold]{out}[/]: {', '.join(written)}")
