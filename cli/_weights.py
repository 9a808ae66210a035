"""What ``compare-weights`` and ``layers`` share: options, notes, the ESD figures and summary.

Nothing here imports torch at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import console

__all__ = [
    "ExcludeOpt",
    "IncludeOpt",
    "KindsOpt",
    "SplitFusedOpt",
    "check_layers",
    "note_inferred_specs",
    "null",
    "print_esd_summary",
    "print_notes",
    "quiet_libraries",
    "submit_esd_figures",
]

KindsOpt = Annotated[
    str,
    typer.Option(
        "--kinds",
        help="Comma-separated layer kinds: conv, linear, attention, embedding (embedding tables of weight files; opt-in).",
    ),
]
IncludeOpt = Annotated[
    str | None,
    typer.Option("--include", "--layers", help="Keep only layers whose name matches this regex."),
]
SplitFusedOpt = Annotated[
    bool,
    typer.Option(
        "--split-fused",
        help="Split fused q/k/v projections of weight files (c_attn, query_key_value, Wqkv, qkv_proj) into NAME:q, :k, :v where the layout is known [default: whole].",
    ),
]
ExcludeOpt = Annotated[
    str | None, typer.Option("--exclude", help="Drop layers whose name matches this regex.")
]


def note_inferred_specs(specs: list[str]) -> None:
    """One stderr note for state-dict files that name no architecture, read as tensors."""
    if specs:
        from spectral_probe.extract import INFERRED_NOTE

        console.print(
            f"note: {' and '.join(dict.fromkeys(specs))}: {INFERRED_NOTE}; "
            "pass --arch SPEC for the real architecture",
            style="dim",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


def quiet_libraries() -> None:
    """Keep library chatter off the user's screen (inherited by the forked figure process).

    matplotlib warns "Attempt to set non-positive ylim on a log-scaled axis" whenever a log
    axis is first drawn empty, which the figures do on purpose; nothing is wrong.
    """
    import warnings

    warnings.filterwarnings("ignore", message="Attempt to set non-positive", category=UserWarning)


def print_notes(notes: list[str]) -> None:
    """One dim stderr line per note of the sources (tied embeddings, precision, vocabulary)."""
    for note in notes:
        console.print(f"note: {note}", style="dim", highlight=False, soft_wrap=True, markup=False)


def check_layers(layers: list[str] | None, option: str, frame: Any) -> None:
    """A one-line error for chosen layers that ``frame`` (a table with a layer column) lacks."""
    if layers:
        known = set(frame["layer"])
        missing = [name for name in layers if name not in known]
        if missing:
            from spectral_probe.errors import ConfigError

            raise ConfigError(
                f"expected {option} among the analysed layers, found {', '.join(missing)}"
            )


def submit_esd_figures(worker: Any, result: Any, directory: Path, layers: list[str] | None) -> None:
    from spectral_probe.plotting import result_fields
    from spectral_probe.plotting.weight_figures import esd_figures

    check_layers(layers, "--esd-layer", result.layers)
    worker.submit(esd_figures, result_fields(result), directory, layers)


def print_esd_summary(summary: dict, label: str = "") -> None:  # type: ignore[type-arg]
    console.print(
        f"{label}mean α {summary['mean_alpha']:.3f}, mean α̂ {summary['mean_alpha_hat']:.3f} over "
        f"{summary['fitted']}/{summary['layers']} fitted layers; {summary['over_trained']} over-trained "
        f"(α < 2), {summary['under_trained']} under-trained (α > 6)"
    )


class null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
