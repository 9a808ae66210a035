"""Entry point: one Typer app merging one sub-app per command group."""

from __future__ import annotations

from typing import Annotated

import typer

from . import (
    compare_weights,
    features,
    finetune,
    laser_sweep,
    layers,
    plot_runs,
    report,
    reproduce,
    select_layers,
    similarity,
    sweep,
    sweep_table,
    transferability,
    truncate,
    validate,
)

app = typer.Typer(
    name="spectral-probe",
    help="Spectral analysis of what transfers when you fine-tune a pre-trained network.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)
app.add_typer(compare_weights.app)
app.add_typer(layers.app)
app.add_typer(features.app)
app.add_typer(similarity.app)
app.add_typer(finetune.app)
app.add_typer(sweep.app)
app.add_typer(sweep_table.app)
app.add_typer(plot_runs.app)
app.add_typer(report.app)
app.add_typer(reproduce.app)
app.add_typer(validate.app)
app.add_typer(transferability.app)
app.add_typer(select_layers.app)
app.add_typer(truncate.app)
app.add_typer(laser_sweep.app)


def _version(value: bool) -> None:
    if value:
        from spectral_probe import __version__

        typer.echo(f"spectral-probe {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool | None,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = None,
) -> None:
    """Spectral analysis of what transfers when you fine-tune a pre-trained network."""


def run() -> None:
    """Console-script entry point."""
    from spectral_probe._alloc import keep_freed_memory

    from ._common import own_process

    own_process()
    keep_freed_memory()  # large CPU activations are reused, not page-faulted anew per batch
    app()
