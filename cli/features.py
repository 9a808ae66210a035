"""``spectral-probe feature-spectrum``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    AmpOpt,
    BatchSizeOpt,
    ChannelsLastOpt,
    DeviceOpt,
    ImageSizeOpt,
    InterpolationOpt,
    JsonOpt,
    MaxBatchesOpt,
    MaxLengthOpt,
    OutOpt,
    PoolChoice,
    PoolOpt,
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


@app.command("feature-spectrum")
@handles_errors
def feature_spectrum_cmd(
    models: Annotated[
        list[str],
        typer.Argument(help="Model specs or checkpoint paths: one curve each.", show_default=False),
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Data spec NAME[:ROOT] (class subsets: NAME[CLASS,...], e.g. digits[0,1,2]), e.g. fashion-mnist, cub200:/data/CUB_200_2011.",
            show_default=False,
        ),
    ],
    split: SplitOpt = "auto",
    layer: Annotated[
        list[str] | None,
        typer.Option(
            "--layer",
            help="Module whose output to analyse (repeatable; 'penultimate' = pooled features) [default: penultimate]. List names with `spectral-probe layers MODEL --modules`.",
        ),
    ] = None,
    batch_size: BatchSizeOpt = 48,
    rate: Annotated[
        str | None,
        typer.Option(help="Sample this share (0.15, 15%) or count (30) per class first."),
    ] = None,
    max_batches: MaxBatchesOpt = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the per-class sample, the batch order and random initialisations."
        ),
    ] = 0,
    image_size: ImageSizeOpt = None,
    interpolation: InterpolationOpt = None,
    pool: PoolOpt = PoolChoice.auto,
    center: Annotated[
        bool, typer.Option(help="Dataset-level spectrum of the centred features (PCA).")
    ] = False,
    dataset_spectrum: Annotated[
        bool, typer.Option(help="Accumulate the dataset-level spectrum (a d x d float64 Gram).")
    ] = True,
    ci: Annotated[float, typer.Option(help="Confidence level of the bands over batches.")] = 0.95,
    label: Annotated[
        list[str] | None,
        typer.Option(
            "--label", help="Name of each model in tables and figures (repeat once per model)."
        ),
    ] = None,
    arch: Annotated[
        str | None, typer.Option(help="Architecture spec for state-dict files without a sidecar.")
    ] = None,
    device: DeviceOpt = "auto",
    amp: AmpOpt = None,
    channels_last: ChannelsLastOpt = None,
    workers: WorkersOpt = 0,
    max_length: MaxLengthOpt = 128,
    out: OutOpt = None,
    json_out: JsonOpt = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="Print the aggregated spectrum as CSV on stdout.")
    ] = False,
    figures: Annotated[bool, typer.Option(help="Write figures into --out.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Singular values of batch feature matrices, per model (paper Figures 1c/d and 3b/c).

    Each batch of b samples gives a b x d feature matrix F; its b singular values are
    aggregated per index over batches (mean and confidence band), also normalised
    (sigma_i / sigma_1, energy fractions) so models compare. The dataset-level spectrum of all
    N x d features comes from a streaming Gram accumulation whose memory does not grow with N.
    Every model sees the same samples in the same batches.
    """
    from spectral_probe._io import check_writable_dir

    with long_lived():
        from spectral_probe._seed import seed_everything
        from spectral_probe.analysis import feature_spectrum

    if out is not None:
        check_writable_dir(out)
    seed_everything(seed)  # randomly initialised models (e.g. timm:NAME) are then reproducible
    reading = {
        "split": split,
        "batch_size": batch_size,
        "rate": rate,
        "max_batches": max_batches,
        "seed": seed,
        "image_size": image_size,
        "interpolation": interpolation,
        "pool": pool.value,
        "device": device,
        "amp": amp,
        "channels_last": channels_last,
        "workers": workers,
        "max_length": max_length,
    }
    reader = feature_reader(data, **reading)
    with progress_bar("extracting features", quiet=quiet) as update:
        result = feature_spectrum(
            models,
            reader,
            layers=layer,
            center=center,
            dataset_spectrum=dataset_spectrum,
            ci=ci,
            labels=label,
            arch=arch,
            progress=update,
        )
    options = {
        "models": models,
        "data": data,
        **reading,
        "layer": layer,
        "center": center,
        "dataset_spectrum": dataset_spectrum,
        "ci": ci,
        "label": label,
        "arch": arch,
    }
    save_and_show(
        result,
        command="feature-spectrum",
        options=options,
        out=out,
        figures=(lambda d: _write_figures(result, d)) if figures else None,
        json_out=json_out,
        csv_out=csv_out,
        csv_frame=result.spectrum,
        summary=lambda: _print_summary(result),
    )


def _write_figures(result: Any, directory: Path) -> None:
    from spectral_probe.plotting import feature_spectrum_figures, save_figures

    save_figures(feature_spectrum_figures(result, directory), processes=1)


def _short(label: str, width: int = 28) -> str:
    """A label that fits a table cell: long paths keep their last two components."""
    if len(label) <= width or "/" not in label:
        return label
    return ".../" + "/".join(label.rstrip("/").split("/")[-2:])


def _print_summary(result: Any) -> None:
    import pandas as pd

    meta = result.meta
    df = result.summary.copy()
    df["model"] = df["model"].map(_short)
    cols = ["model", "layer", "d", "sigma1", "sigma_min", "small_half_energy", "effective_rank"]
    heads = ["model", "layer", "d", "σ1", "σ_min", "small-half", "eff. rank"]
    if "dataset_effective_rank" in df and df["dataset_effective_rank"].notna().any():
        cols.append("dataset_effective_rank")
        heads.append("eff. rank (all N)")
    title = f"feature spectra: {meta['data']} (split {meta['split']}, {meta['n_samples']} samples)"
    batches = sorted(set(df["n_batches"]))
    title += f", {'/'.join(map(str, batches))} batches of {meta['batch_size']}"
    for col, what in (("layer", "at"), ("d", "d =")):  # constant columns go to the title
        if df[col].nunique() == 1:
            title += f", {what} {df[col].iloc[0]}"
            i = cols.index(col)
            del cols[i], heads[i]
    print_frame(df, cols, headers=heads, title=title)
    # the spectrum itself at a few indices: one row per index, one column per model (and layer)
    several = len(result.layers) > 1
    table: dict[str, list[str]] = {}
    for row in result.summary.itertuples(index=False):
        curve = result.curve(row.model, row.layer, "sigma")
        k = len(curve)
        picks = sorted({1, max(1, k // 4), max(1, k // 2), max(1, 3 * k // 4), k})
        table.setdefault("index", [str(i) for i in picks])
        cells = []
        for i in picks:
            r = curve.iloc[i - 1]
            half = (r["ci_high"] - r["ci_low"]) / 2
            cells.append(f"{r['mean']:.3g}" + (f" ± {half:.2g}" if half == half else ""))
        table[_short(row.model) + (f" · {row.layer}" if several else "")] = cells
    frame = pd.DataFrame(table)
    print_frame(
        frame,
        list(frame.columns),
        title=f"mean σ_i over batches (± half-width of the {meta['ci']:.0%} CI)",
    )
    console.print(
        "means over batches; small-half: share of sum(σ²) in the smaller half of the values (paper Fig. 1d); "
        "eff. rank: exp(entropy of σ/sum σ); --json or --out for every index",
        style="dim",
    )
    console.print(
        f"analysed {len(result.models)} model(s) in {meta['seconds']:.1f} s on {meta['device']}"
    )
