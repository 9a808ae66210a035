"""``spectral-probe sweep``: a TOML grid of fine-tuning runs; ``sweep laser``: the LASER search.

``sweep FILE ...`` runs a sweep file (the ``file`` command, taken when the first word is not
a command of the group); ``sweep laser --model M --eval eval.txt ...`` runs the LASER search
through the same executors (:mod:`cli.laser_sweep`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from . import laser_sweep
from ._common import console, handles_errors, long_lived, print_frame, print_json, progress_bar
from ._training import ExecutorOpt, LogOpt, QuietOpt, SlurmOpt


class _SweepGroup(TyperGroup):
    """``sweep FILE ...`` is ``sweep file FILE ...``; ``sweep laser ...`` is the LASER search."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["file", *args]
        return super().parse_args(ctx, args)


sweep = typer.Typer(
    name="sweep",
    cls=_SweepGroup,
    no_args_is_help=True,
    help="Run a sweep file (sweep FILE), or the LASER search (sweep laser --model M ...).",
)
app = typer.Typer()
app.add_typer(sweep)
sweep.command("laser")(laser_sweep.laser_cmd)


@sweep.command("file")
@handles_errors
def sweep_cmd(
    spec: Annotated[
        Path,
        typer.Argument(
            help="Sweep TOML file (see sweeps/table2.toml), or a packaged sweep's name.",
            show_default=False,
        ),
    ],
    executor: ExecutorOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder of run directories [default: the file's sweep.out, else runs].",
            show_default=False,
        ),
    ] = None,
    max_parallel: Annotated[
        int | None,
        typer.Option(
            help="Runs at once (local) or the SLURM array's parallelism [default: the file's, else 1].",
            show_default=False,
        ),
    ] = None,
    slurm: SlurmOpt = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List the cells and whether they are done; run nothing."),
    ] = False,
    wait: Annotated[bool, typer.Option(help="Wait for SLURM jobs to end.")] = True,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the cells' status as JSON.")
    ] = False,
    log: LogOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Run a grid of fine-tuning runs (models x datasets x methods x rates x seeds x hyperparameters).

    Finished runs (final.json present) are skipped, interrupted ones continue from their
    training state, so a sweep can be restarted at any time until every cell is done.
    """
    with long_lived():
        from spectral_probe.training import load_sweep, parse_hp, run_sweep

    parsed = load_sweep(spec)
    with progress_bar("sweep", quiet=quiet or dry_run) as update:
        report = run_sweep(
            parsed,
            out,
            executor=executor.value if executor else None,
            max_parallel=max_parallel,
            slurm=parse_hp(slurm or []),
            dry_run=dry_run,
            wait=wait,
            progress=update,
            log=log or None,
        )
    cells = report.cells.copy()
    if json_out:
        print_json(cells.to_dict(orient="records"))
    else:
        for col in ("test_accuracy", "error"):
            if col not in cells:
                cells[col] = None
        print_frame(
            cells,
            ["run_id", "status", "test_accuracy", "error"],
            title=f"{parsed.name}: {report.out}",
        )
        counts = ", ".join(f"{n} {s}" for s, n in report.counts().items())
        console.print(f"{len(cells)} cells: {counts}")
    if (cells["status"] == "failed").any():
        raise typer.Exit(1)
