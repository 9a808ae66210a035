"""``spectral-probe rank-models``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    BatchSizeOpt,
    DeviceOpt,
    ImageSizeOpt,
    InterpolationOpt,
    JsonOpt,
    MaxLengthOpt,
    SplitOpt,
    WorkersOpt,
    console,
    feature_reader,
    handles_errors,
    long_lived,
    print_frame,
    progress_bar,
    save_and_show,
)

app = typer.Typer()

# the registry's names, spelled here so that --help does not import torch
_SCORE_HELP = "logme, leep, nce, h_score, regularized_h_score, transrate, sfda"


@app.command("rank-models")
@handles_errors
def rank_models_cmd(
    models: Annotated[
        list[str],
        typer.Argument(help="Model specs or checkpoint paths to rank.", show_default=False),
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Data spec NAME[:ROOT] (class subsets: NAME[CLASS,...], e.g. digits[0,1,2]) of the target task, e.g. fashion-mnist, imagefolder:/data/task.",
            show_default=False,
        ),
    ],
    split: SplitOpt = "train",
    score: Annotated[
        list[str] | None,
        typer.Option(
            "--score",
            help=f"Score to compute (repeatable) [default: all]: {_SCORE_HELP}.",
            show_default=False,
        ),
    ] = None,
    max_samples: Annotated[
        int | None, typer.Option(help="Score a seeded random subset of this many samples.")
    ] = None,
    batch_size: BatchSizeOpt = 64,
    image_size: ImageSizeOpt = None,
    interpolation: InterpolationOpt = None,
    seed: Annotated[
        int, typer.Option(help="Seed of the subset and of random initialisations.")
    ] = 0,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label", help="Name of each model in tables and figures (repeat once per model)."
        ),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(help="Architecture spec for state-dict files without a sidecar."),
    ] = None,
    device: DeviceOpt = "auto",
    workers: WorkersOpt = 0,
    max_length: MaxLengthOpt = 128,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write ranking.csv, scores.csv, results.json, config.json and figures here.",
        ),
    ] = None,
    json_out: JsonOpt = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="Print the ranking table as CSV on stdout.")
    ] = False,
    figures: Annotated[bool, typer.Option(help="Write figures into --out.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Rank pre-trained models for a task by transferability scores, before fine-tuning any.

    Each model's penultimate features are extracted once on the same samples and shared by
    every score (LogME, H-score, regularized H-score, TransRate, SFDA); LEEP and NCE read the
    model's own source (ImageNet) classifier and are skipped, with the reason, for models
    without one (random initialisation, text encoders, fine-tuned checkpoints). Every score is
    higher-is-better; the table gives each score, its rank and time, and the consensus (mean) rank.
    """
    from spectral_probe._io import check_writable_dir

    with long_lived():
        from spectral_probe._seed import seed_everything
        from spectral_probe.transferability import check_scores, rank_models

    names = check_scores(score)  # an unknown name fails before any model loads
    if out is not None:
        check_writable_dir(out)
    seed_everything(seed)
    reading = {
        "split": split,
        "max_samples": max_samples,
        "batch_size": batch_size,
        "image_size": image_size,
        "interpolation": interpolation,
        "seed": seed,
        "device": device,
        "workers": workers,
        "max_length": max_length,
    }
    reader = feature_reader(data, **reading)
    with progress_bar("extracting features", quiet=quiet) as update:
        result = rank_models(models, reader, scores=names, labels=label, arch=arch, progress=update)
    options = {
        "models": models,
        "data": data,
        **reading,
        "score": names,
        "label": label,
        "arch": arch,
    }
    save_and_show(
        result,
        command="rank-models",
        options=options,
        out=out,
        figures=(lambda d: _write_figures(result, d)) if figures else None,
        json_out=json_out,
        csv_out=csv_out,
        csv_frame=result.table,
        summary=lambda: _print_summary(result),
    )


def _write_figures(result: Any, directory: Path) -> None:
    from spectral_probe.plotting import ranking_figures, save_figures

    save_figures(ranking_figures(result, directory), processes=1)


_SHORT = {
    "logme": "LogME",
    "leep": "LEEP",
    "nce": "NCE",
    "h_score": "H",
    "regularized_h_score": "H_α",
    "transrate": "TrR",
    "sfda": "SFDA",
}


def _print_summary(result: Any) -> None:
    import pandas as pd

    meta = result.meta
    df = result.table.sort_values("consensus_rank", kind="stable")
    names = result.score_names
    ranks: dict[str, Any] = {
        "model": df["model"],
        "d": df["feature_dim"],
        "consensus": df["consensus_rank"],
    }
    for name in names:
        ranks[_SHORT.get(name, name)] = ["–" if r != r else f"{r:.0f}" for r in df[f"{name}_rank"]]
    frame = pd.DataFrame(ranks)
    title = (
        f"ranks (1 = best): {meta['data']} ({meta['split']}, {meta['n_samples']} samples, "
        f"{meta['n_classes']} classes)"
    )
    print_frame(frame, list(frame.columns), title=title)
    values: dict[str, Any] = {"score": [_SHORT.get(n, n) for n in names]}
    for row in df.itertuples(index=False):  # one column per model: the values fit a narrow terminal
        values[str(row.model)] = [getattr(row, n) for n in names]
    frame = pd.DataFrame(values)
    print_frame(frame, list(frame.columns), title="scores (higher is better)")
    times = {
        _SHORT.get(k, k): float(result.table[f"{k}_seconds"].sum()) for k in result.score_names
    }
    console.print(
        "higher is better for every score; rank 1 = best; consensus = mean rank over the scores a model has; "
        "H_α = regularized H-score, TrR = TransRate. Seconds per score (all models): "
        + ", ".join(f"{k} {v:.2f}" for k, v in times.items()),
        style="dim",
    )
    skipped = result.scores.dropna(subset=["skipped"])
    for (model, reason), part in skipped.groupby(["model", "skipped"], sort=False):
        console.print(f"{model}: {', '.join(part['score'])} skipped ({reason})", style="dim")
    console.print(
        f"ranked {len(result.table)} model(s) in {meta['seconds']:.1f} s on {meta['device']}"
    )
