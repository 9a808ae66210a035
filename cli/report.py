"""``spectral-probe report`` (which regularizer?) and ``spectral-probe demo`` (the main job)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ._common import console, handles_errors, long_lived

app = typer.Typer()


@contextmanager
def _report_progress(quiet: bool) -> Iterator[tuple[Callable[[str], None], Callable[..., None]]]:
    """A stage line plus two bars (pilot runs, iterations of the current run) on stderr."""
    if quiet:
        yield (lambda text: None), (lambda *a: None)
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as prog:
        runs = prog.add_task("pilot runs", total=None, visible=False)
        steps = prog.add_task("", total=None, visible=False)

        def stage(text: str) -> None:
            console.print(f"[bold]›[/] {text}")

        def pilot(done: int, total: int, it: int, iters: int, label: str) -> None:
            prog.update(runs, completed=done, total=total, visible=True)
            if iters:
                prog.update(
                    steps, completed=it, total=iters, description=f"  {label}", visible=True
                )

        yield stage, pilot


def _run_report(settings: Any, out: Path, overwrite: bool, quiet: bool) -> Any:
    with long_lived():
        from spectral_probe.report import build_report, render_report
        from spectral_probe.report.outdir import prepare_output

    state = prepare_output(out, settings, overwrite=overwrite)
    if state == "resume":
        console.print(f"resuming the unfinished report in {out}: finished pilot runs are reused")
    with _report_progress(quiet) as (stage, pilot):
        report = build_report(settings, out, stage=stage, pilot_progress=pilot)
        stage("rendering the report")
        paths = render_report(report, out)
    return report, paths


@app.command("report")
@handles_errors
def report_cmd(
    model: Annotated[str, typer.Option(help="Pre-trained model spec.")],
    data: Annotated[str, typer.Option(help="Target data spec, e.g. imagefolder:/data/mytask.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Report folder (index.html, report.md, report.json, figures/, pilots/).",
        ),
    ] = Path("report"),
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            help="Candidate regularizer, repeatable [default: l2, l2+bss, l2-sp, l2-sp+bss, delta+bss].",
            show_default=False,
        ),
    ] = None,
    rate: Annotated[
        list[str] | None,
        typer.Option(
            "--rate",
            help="Per-class sampling rate of the pilots, repeatable; the recommendation is made at the last [default: 100%].",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        list[int] | None,
        typer.Option(
            "--seed",
            help="Pilot seed, repeatable, shared by every method [default: 0 1 2]; high confidence needs 3 or more, and the report states the power they give.",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="Fine-tuning preset of the pilots [default: demo on CPU, paper on GPU].",
            show_default=False,
        ),
    ] = None,
    iterations: Annotated[
        int | None, typer.Option(help="Pilot length in iterations [preset].", show_default=False)
    ] = None,
    image_size: Annotated[
        int | None,
        typer.Option(help="Input side of the pilots in pixels [preset].", show_default=False),
    ] = None,
    val: Annotated[
        str, typer.Option(help="Validation share carved from the training split.")
    ] = "10%",
    eval_max: Annotated[
        int, typer.Option(help="Evaluate pilots on at most this many images.")
    ] = 2000,
    finetuned: Annotated[
        list[str] | None,
        typer.Option(
            "--finetuned",
            help="Your own fine-tuned checkpoint to compare with the pre-trained model, repeatable.",
            show_default=False,
        ),
    ] = None,
    compare_models: Annotated[
        list[str] | None,
        typer.Option(
            "--compare-models",
            help="Another pre-trained model to rank against MODEL by transferability scores, repeatable.",
            show_default=False,
        ),
    ] = None,
    delta: Annotated[
        bool,
        typer.Option(help="Also pilot DELTA (costly: a frozen model copy and extra forwards)."),
    ] = False,
    alpha: Annotated[
        float, typer.Option(help="One-sided level of the paired, best-of-k corrected comparisons.")
    ] = 0.05,
    seed_sd_floor: Annotated[
        float,
        typer.Option(
            help="Seed-to-seed accuracy std below which the measured spread is not believed, for any number of seeds (in [0, 1]; the validation split's binomial noise is added).",
        ),
    ] = 0.01,
    default: Annotated[
        str | None,
        typer.Option(
            help="Method used when the pilots show no detectable difference [default: l2+bss; why in docs/validation.md].",
            show_default=False,
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    overwrite: Annotated[
        bool, typer.Option(help="Replace a finished report in --out (its pilot runs are reused).")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """Which regularizer should you fine-tune with? Pilots, spectra, a recommendation.

    Fine-tunes briefly with each candidate regularizer on a validation split carved from your
    training data, measures the feature spectra and weight angles, and writes a self-contained
    index.html (plus report.md and report.json) with a recommendation, its evidence, its
    confidence, caveats and the commands that reproduce every number. Re-running continues an
    interrupted report, reusing finished pilots.
    """
    import torch

    from spectral_probe.report import DEFAULT_METHODS, ReportSettings
    from spectral_probe.report.settings import DEFAULT_SEEDS

    methods = tuple(method or DEFAULT_METHODS) + (
        ("delta",) if delta and "delta" not in (method or ()) else ()
    )
    gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    extra: dict[str, Any] = {"default_method": default} if default else {}
    settings = ReportSettings(
        model=model,
        data=data,
        methods=methods,
        rates=tuple(rate or ("100%",)),
        seeds=tuple(seed or DEFAULT_SEEDS),
        preset=preset or ("paper" if gpu else "demo"),
        iterations=iterations,
        image_size=image_size,
        val=val,
        eval_max=eval_max,
        finetuned=tuple(finetuned or ()),
        compare_models=tuple(compare_models or ()),
        device=device,
        alpha=alpha,
        seed_sd_floor=seed_sd_floor,
        **extra,
    )
    report, paths = _run_report(settings, out, overwrite, quiet)
    rec = report.headline
    console.print(f"recommendation: [bold]{rec.method}[/] (confidence: {rec.confidence})")
    typer.echo(str(paths["html"]))


@app.command("demo")
@handles_errors
def demo_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the demo's results.")] = Path(
        "demo-out"
    ),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    overwrite: Annotated[
        bool, typer.Option(help="Replace a finished demo in --out (its runs are reused).")
    ] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
) -> None:
    """The main job on the embedded default: EfficientNet-Lite0 (ImageNet) on Fashion-MNIST.

    Fine-tunes the bundled ImageNet model at two sampling rates with L2 and L2+BSS, compares
    its weights with the pre-trained ones, measures feature spectra and writes the diagnostic
    report. On CPU it is sized to finish in minutes (and says so in the report); on a GPU it
    uses the paper's settings.
    """
    from spectral_probe.report.demo import demo_settings, write_demo_extras

    settings = demo_settings(device)
    report, paths = _run_report(settings, out, overwrite, quiet)
    extras = write_demo_extras(report, out)
    rec = report.headline
    console.print(
        f"recommendation at {settings.rate}: [bold]{rec.method}[/] (confidence: {rec.confidence})"
    )
    for name, path in extras.items():
        console.print(f"{name}: {path}")
    console.print(f"report: [bold]{paths['html']}[/]")
    typer.echo(str(paths["html"]))
