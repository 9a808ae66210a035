"""``spectral-probe reproduce-page``: the paper's findings tested on finished runs (docs/reproduction.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, handles_errors, print_json

app = typer.Typer()


@app.command("reproduce-page")
@handles_errors
def reproduce_page_cmd(
    runs: Annotated[
        Path,
        typer.Argument(
            help="Folder of run directories, e.g. runs/reproduce (any depth; a missing folder gives a page of 'not yet run').",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder of the page: writes reproduction.md and reproduction/ (figures, numbers.json).",
        ),
    ] = Path("docs"),
    reduced: Annotated[
        str | None,
        typer.Option(
            help="Say on the page that the runs are a reduced set-up (one sentence naming the cells and iterations); every verdict is then marked provisional."
        ),
    ] = None,
    max_batches: Annotated[
        int, typer.Option(help="Test batches per checkpoint for the feature spectra.")
    ] = 10,
    device: Annotated[
        str, typer.Option(help="cpu, cuda or auto (checkpoints and weight decompositions).")
    ] = "cpu",
    figure1_data: Annotated[
        str,
        typer.Option(
            help="Dataset name preferred for Figure 1 (else the one with the most L2 runs)."
        ),
    ] = "mit-indoor67",
    figure3_data: Annotated[
        str,
        typer.Option(
            help="Dataset name preferred for Figure 3 (else the one with the most L2+BSS runs)."
        ),
    ] = "stanford-dogs",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the verdicts and numbers as JSON.")
    ] = False,
) -> None:
    """Figures 1(b-d) and 3(a-d) of the paper from finished runs: claim, figure, deciding numbers, verdict."""
    from spectral_probe.report.reproduction import measure_reproduction
    from spectral_probe.report.reproduction_page import write_reproduction_page

    if not runs.is_dir():
        console.print(f"no runs at {runs}: every figure is 'not yet run'")
    rep = measure_reproduction(
        runs,
        max_batches=max_batches,
        device=device,
        figure1_data=figure1_data,
        figure3_data=figure3_data,
        stage=lambda text: console.print(f"[bold]›[/] {text}"),
    )
    command = f"spectral-probe reproduce-page {runs} --out {out}" + (
        f' --reduced "{reduced}"' if reduced else ""
    )
    paths = write_reproduction_page(rep, out, command=command, reduced=reduced)
    if json_out:
        print_json(rep.to_dict())
        return
    for f in rep.findings:
        mark = " (provisional)" if (f.provisional or reduced) and f.verdict != "not yet run" else ""
        console.print(f"Figure {f.figure}: [bold]{f.verdict}[/]{mark}")
    console.print(
        f"wrote [bold]{paths['page']}[/] and {len(paths) - 1} file(s) in {paths['json'].parent}"
    )
