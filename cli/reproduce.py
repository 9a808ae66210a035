"""``spectral-probe reproduce-export`` and ``reproduce-page``: the paper's findings tested on
finished runs (docs/reproduction.md), through a small per-run data file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, fail, handles_errors, print_json

app = typer.Typer()

_FIG1 = "Dataset name preferred for Figure 1 (else the one with the most L2 runs)."
_FIG3 = "Dataset name preferred for Figure 3 (else the one with the most L2+BSS runs)."
_REDUCED = (
    "Say on the page that the runs are a reduced set-up (one sentence naming the cells and "
    "iterations); every verdict is then marked provisional."
)


@app.command("reproduce-export")
@handles_errors
def reproduce_export_cmd(
    runs: Annotated[
        Path,
        typer.Argument(
            help="Folder of run directories, e.g. runs/reproduce-quick (any depth).",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="The data file to write (JSON), e.g. docs/reproduction/data/reproduce-quick.json.",
            show_default=False,
        ),
    ],
    reduced: Annotated[str | None, typer.Option(help=_REDUCED)] = None,
    max_batches: Annotated[
        int, typer.Option(help="Test batches per checkpoint for the feature spectra.")
    ] = 10,
    device: Annotated[
        str, typer.Option(help="cpu, cuda or auto (checkpoints and weight decompositions).")
    ] = "cpu",
    figure1_data: Annotated[str, typer.Option(help=_FIG1)] = "mit-indoor67",
    figure3_data: Annotated[str, typer.Option(help=_FIG3)] = "stanford-dogs",
) -> None:
    """Measure the per-run numbers of the reproduction page (spectra, angles, errors) into a small JSON file."""
    import dataclasses

    from spectral_probe.report.reproduction_data import export_reproduction_data

    if not runs.is_dir():
        fail(f"expected a folder of run directories, found nothing at {runs}")
    data = export_reproduction_data(
        runs,
        max_batches=max_batches,
        device=device,
        figure1_data=figure1_data,
        figure3_data=figure3_data,
        stage=lambda text: console.print(f"[bold]›[/] {text}"),
    )
    if reduced:
        data = dataclasses.replace(data, meta={**data.meta, "reduced": reduced})
    path = data.write(out)
    size = path.stat().st_size / 1024
    console.print(f"wrote [bold]{path}[/] ({len(data.runs)} runs, {size:.0f} KiB)")


@app.command("reproduce-page")
@handles_errors
def reproduce_page_cmd(
    runs: Annotated[
        Path | None,
        typer.Argument(
            help="Folder of run directories, e.g. runs/reproduce (any depth; a missing folder gives a page of 'not yet run'). Leave out with --from.",
            show_default=False,
        ),
    ] = None,
    from_data: Annotated[
        Path | None,
        typer.Option(
            "--from",
            help="Make the page from a data file written by reproduce-export instead of run directories (seconds).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder of the page: writes reproduction.md and reproduction/ (figures, numbers.json).",
        ),
    ] = Path("docs"),
    reduced: Annotated[str | None, typer.Option(help=_REDUCED)] = None,
    max_batches: Annotated[
        int, typer.Option(help="Test batches per checkpoint for the feature spectra.")
    ] = 10,
    device: Annotated[
        str, typer.Option(help="cpu, cuda or auto (checkpoints and weight decompositions).")
    ] = "cpu",
    figure1_data: Annotated[str, typer.Option(help=_FIG1)] = "mit-indoor67",
    figure3_data: Annotated[str, typer.Option(help=_FIG3)] = "stanford-dogs",
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the verdicts and numbers as JSON.")
    ] = False,
) -> None:
    """Figures 1(b-d) and 3(a-d) of the paper: claim, figure, deciding numbers with intervals, three-way verdict."""
    import dataclasses

    from spectral_probe.report.reproduction import measure_reproduction, reproduction_from_data
    from spectral_probe.report.reproduction_data import ReproductionData
    from spectral_probe.report.reproduction_page import write_reproduction_page

    if (runs is None) == (from_data is None):
        fail(
            "expected either a folder of runs or --from DATA_FILE, found "
            + ("both" if runs else "neither")
        )
    if from_data is not None:
        rep = reproduction_from_data(ReproductionData.read(from_data))
        command = f"spectral-probe reproduce-page --from {from_data} --out {out}"
    elif runs is not None:
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
        if reduced:  # kept with the data, so the page regenerates with it
            data = dataclasses.replace(rep.data, meta={**rep.data.meta, "reduced": reduced})
            rep = dataclasses.replace(rep, data=data)
        # every page ships with its data: the per-run numbers go next to it
        from_data = rep.data.write(out / "reproduction" / "data" / f"{runs.name or 'runs'}.json")
        console.print(f"wrote the per-run numbers to [bold]{from_data}[/]")
        command = f"spectral-probe reproduce-page --from {from_data} --out {out}"
    else:  # neither: refused above
        return
    if reduced:
        command += f' --reduced "{reduced}"'
    paths = write_reproduction_page(rep, out, command=command, source=from_data, reduced=reduced)
    if json_out:
        print_json(rep.to_dict())
        return
    for f in rep.findings:
        mark = (
            " (provisional)"
            if (f.provisional or reduced or rep.meta.get("reduced")) and f.verdict != "not yet run"
            else ""
        )
        console.print(f"Figure {f.figure}: [bold]{f.verdict}[/]{mark}")
    console.print(
        f"wrote [bold]{paths['page']}[/] and {len(paths) - 1} file(s) in {paths['json'].parent}"
    )
