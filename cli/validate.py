"""``spectral-probe validate``: does following the report's advice beat a fixed default?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._common import console, handles_errors, print_frame, print_json

app = typer.Typer()


def _retrospective(out: Optional[Path], json_out: bool) -> None:
    from spectral_probe._io import staged_dir, write_json
    from spectral_probe.validation import retrospective

    from ._common import invocation

    result = retrospective()
    if out is not None:
        with staged_dir(out) as tmp:
            result.to_json(tmp / "results.json")
            result.to_csv(tmp)
            write_json(tmp / "config.json", invocation("validate", {"retrospective": True}))
    if json_out:
        print_json(result.to_dict())
        return
    frame = result.policies.copy()
    frame["share_within"] = 100 * frame["share_within"]
    print_frame(
        frame,
        ["policy", "regret", "max_regret", "share_within", "wins"],
        headers=["policy", "mean regret (pts)", "max regret", "% within 0.5", "cells won"],
        title=f"Fixed policies on the paper's Table 2 ({len(result.cells)} cells, ResNet-50)",
    )
    gap = result.to_dict()["median_gap_top2_old"]
    console.print(
        f"median gap between the best two of L2, L2+BSS, L2-SP, L2-SP+BSS: {gap:.2f} points"
    )
    if out is not None:
        console.print(f"wrote results to [bold]{out}[/]")


@app.command("validate")
@handles_errors
def validate_cmd(
    retrospective: Annotated[
        bool,
        typer.Option(
            "--retrospective",
            help="Regret of every fixed policy on the paper's Table 2 (instant; no training).",
        ),
    ] = False,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Output folder (results.json, CSVs, summary.html).",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
) -> None:
    """Does following the report's advice beat always using one regularizer?

    --retrospective scores every fixed policy ("always X") on the paper's own Table 2 against
    the best method of each cell: the anchor the advice has to beat.
    """
    if retrospective:
        _retrospective(out, json_out)
        return
    _retrospective(out, json_out)
