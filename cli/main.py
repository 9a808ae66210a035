"""Entry point: one Typer app merging one sub-app per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="spectral-probe",
    help="Spectral analysis of what transfers when you fine-tune a pre-trained network.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def run() -> None:
    """Console-script entry point."""
    app()
