"""``spectral-probe validate``: does following the report's advice beat a fixed default?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._common import console, handles_errors, print_frame, print_json

app = typer.Typer()


def _retrospective(out: Path | None, json_out: bool) -> None:
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
    chosen = ", ".join(f"{r.dataset}: {r.chosen}" for r in result.lodo.itertuples())
    console.print(
        f"default chosen leave one dataset out: mean regret {result.lodo_regret:.2f} points "
        f"({chosen})"
    )
    for r in result.pairs.itertuples():
        console.print(
            f"{r.a} - {r.b}: {r.mean:+.2f} points, {100 * r.level:.0f}% CI "
            f"[{r.ci_low:+.2f}, {r.ci_high:+.2f}], wins {r.wins} of {r.n}, "
            f"paired t p = {r.p_t:.3f}, sign test p = {r.p_sign:.3f}"
        )
    if out is not None:
        console.print(f"wrote results to [bold]{out}[/]")


def _page(page: Path, check: bool) -> None:
    from spectral_probe.validation.page import update_page

    fresh = update_page(page, check=check)
    if check and not fresh:
        console.print(f"{page}: tables out of date; run spectral-probe validate --page {page}")
        raise typer.Exit(1)
    console.print(f"{page}: tables {'up to date' if fresh else 'regenerated'}")


def _export(runs: Path, out: Path | None) -> None:
    from spectral_probe._io import atomic_write_text
    from spectral_probe.validation.page import export_runs

    if out is None:
        raise typer.BadParameter("expected --out FILE.csv with --export-runs, found none")
    frame = export_runs(runs)
    atomic_write_text(out, frame.to_csv(index=False))
    console.print(f"wrote {len(frame)} runs to [bold]{out}[/]")


def _run_suite(
    suite_name: str,
    quick: bool,
    out: Path | None,
    executor: str,
    max_parallel: int,
    device: str,
    json_out: bool,
    quiet: bool,
    slurm: list[str],
    methods: list[str],
) -> None:
    import dataclasses
    import shlex

    from spectral_probe.errors import ConfigError
    from spectral_probe.training.config import parse_hp
    from spectral_probe.training.sweep import EXECUTORS
    from spectral_probe.validation import get_suite, validate

    from ._common import progress_bar

    if executor not in EXECUTORS:
        raise ConfigError(f"expected --executor in {list(EXECUTORS)}, found {executor!r}")
    suite = get_suite("quick" if quick else suite_name)
    if methods:
        if len(set(methods)) != len(methods):
            raise ConfigError(f"expected each --method once, found {', '.join(methods)}")
        suite = dataclasses.replace(suite, methods=tuple(methods))
    if out is None:
        raise ConfigError("expected --out DIR for the runs and results of a suite, found none")
    command = " ".join(
        [
            "spectral-probe validate",
            "--quick" if quick else f"--suite {shlex.quote(suite.name)}",
            f"--out {shlex.quote(str(out))}",
            f"--executor {executor}",
        ]
        + ([f"--max-parallel {max_parallel}"] if max_parallel != 1 else [])
        + [f"--method {shlex.quote(m)}" for m in methods]
    )
    with progress_bar(f"validation cells ({suite.name})", quiet=quiet or json_out) as update:
        result = validate(
            suite,
            out,
            executor=executor,
            max_parallel=max_parallel,
            device=device,
            slurm=parse_hp(slurm) if slurm else None,
            progress=update,
            stage=None if quiet else (lambda t: console.print(f"[bold]›[/] {t}")),
            command=command,
        )
    if json_out:
        print_json(result.to_dict())
        return
    frame = result.policies.copy()
    frame["share_within"] = 100 * frame["share_within"]
    print_frame(
        frame,
        ["policy", "regret", "max_regret", "share_within", "kendall_tau"],
        headers=["policy", "mean regret (pts)", "max regret", "% within 0.5", "pilot-vs-full tau"],
        title=f"Policies on suite {suite.name} ({len(result.tasks)} tasks)",
    )
    print_frame(
        result.signals,
        ["signal", "gain", "kendall_tau", "weighted_tau", "n_tasks", "regret"],
        title="Spectral signals vs the full-run gain over l2 (regret: the former rule on that signal)",
    )
    console.print(f"wrote results to [bold]{out}[/] (summary.html, summary.md)")


@app.command("validate")
@handles_errors
def validate_cmd(
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="The quick suite: offline, CPU, about 15 min on 2 idle cores."
        ),
    ] = False,
    suite: Annotated[
        str,
        typer.Option(
            help="Suite to run: quick, cpu (hours) or table2 (the paper's grid; needs DATA)."
        ),
    ] = "quick",
    retrospective: Annotated[
        bool,
        typer.Option(
            "--retrospective",
            help="Regret of every fixed policy on the paper's Table 2 (instant; no training).",
        ),
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output folder: runs/, results.json, CSVs, summary.html and summary.md.",
            show_default=False,
        ),
    ] = None,
    executor: Annotated[
        str,
        typer.Option(help="inline (this process), local (a process per cell, submitit) or slurm."),
    ] = "inline",
    max_parallel: Annotated[
        int, typer.Option(help="Cells at once (local) or the SLURM array's parallelism.")
    ] = 1,
    slurm: Annotated[
        list[str] | None,
        typer.Option(
            "--slurm",
            help="SLURM parameter KEY=VALUE, repeatable: --slurm partition=gpu --slurm timeout_min=720.",
            show_default=False,
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            help="Candidate, repeatable, replacing the suite's list (default: the report's five). "
            "Runs already finished in OUT/runs are reused, so adding one to a finished "
            "validation runs only its cells.",
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    page: Annotated[
        Path | None,
        typer.Option(
            "--page",
            help="Regenerate the tables of a validation page (docs/validation.md) from the data "
            "committed beside it (validation/data/) and the packaged Table 2; runs nothing.",
            show_default=False,
        ),
    ] = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export-runs",
            help="Write one CSV row per finished run under this folder (test accuracy, DELTA's "
            "source_norm, the first step's losses) to --out FILE: the page's data.",
            show_default=False,
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="With --page: exit 1 if a table is out of date.")
    ] = False,
) -> None:
    """Does following the report's advice beat always using one regularizer?

    Runs a suite of tasks (model x dataset x sampling rate): the report's pilots and full
    fine-tunes of every candidate, as resumable sweep cells under OUT/runs (a re-run skips
    finished cells). Scores each policy (the report's advice, the best pilot, "always X") by
    its regret against the best candidate of each task, the rank agreement of pilots and full
    runs (Kendall tau), and each spectral signal against the gain of +BSS and L2-SP over L2.
    --retrospective scores the fixed policies on the paper's own Table 2 instead: the anchor
    the advice has to beat.
    """
    if page is not None:
        _page(page, check)
        return
    if export is not None:
        _export(export, out)
        return
    if retrospective:
        _retrospective(out, json_out)
        return
    _run_suite(
        suite,
        quick,
        out,
        executor,
        max_parallel,
        device,
        json_out,
        quiet,
        slurm or [],
        method or [],
    )
