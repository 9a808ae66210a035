"""``spectral-probe compare-features``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    AmpOpt,
    BatchSizeOpt,
    DeviceOpt,
    ImageSizeOpt,
    InterpolationOpt,
    JsonOpt,
    MaxBatchesOpt,
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

# the registry's names, without importing the library at --help time
METRIC_NAMES = ("cka", "debiased-cka", "rbf-cka", "svcca", "pwcca", "procrustes")


@app.command("compare-features")
@handles_errors
def compare_features_cmd(
    model_a: Annotated[
        str, typer.Argument(help="Reference (pre-trained) model spec or checkpoint path.")
    ],
    model_b: Annotated[
        str, typer.Argument(help="Compared (fine-tuned) model spec or checkpoint path.")
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Data spec NAME[:ROOT] (class subsets: NAME[CLASS,...], e.g. digits[0,1,2]), e.g. fashion-mnist, digits.",
            show_default=False,
        ),
    ],
    split: SplitOpt = "auto",
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            help="Regex over MODEL_A's module names (re.search; 'penultimate' counts as a name) [default: the stage outputs, e.g. blocks.0..6, and penultimate].",
            show_default=False,
        ),
    ] = None,
    layers_b: Annotated[
        str | None,
        typer.Option(
            "--layers-b",
            help="Regex for MODEL_B [default: MODEL_A's layer names].",
            show_default=False,
        ),
    ] = None,
    metric: Annotated[
        list[str] | None,
        typer.Option(
            "--metric",
            "-m",
            help=f"Repeatable: {', '.join(METRIC_NAMES)} [default: cka and debiased-cka].",
            show_default=False,
        ),
    ] = None,
    batch_size: BatchSizeOpt = 64,
    max_batches: MaxBatchesOpt = None,
    sample: Annotated[
        int,
        typer.Option(
            help="Rows kept for rbf-cka, svcca, pwcca and procrustes (the first ones in the seeded order); cka and debiased-cka use every sample."
        ),
    ] = 2048,
    seed: Annotated[int, typer.Option(help="Seed of the batch order.")] = 0,
    image_size: ImageSizeOpt = None,
    interpolation: InterpolationOpt = None,
    pool: PoolOpt = PoolChoice.auto,
    rbf_sigma: Annotated[
        float, typer.Option(help="rbf-cka bandwidth, times the median distance.")
    ] = 0.8,
    svcca_keep: Annotated[
        float, typer.Option(help="svcca: share of the variance kept by the SVD step.")
    ] = 0.99,
    arch: Annotated[
        str | None,
        typer.Option(
            help="Architecture spec for state-dict files without a sidecar (both models)."
        ),
    ] = None,
    device: DeviceOpt = "auto",
    amp: AmpOpt = None,
    workers: WorkersOpt = 0,
    out: OutOpt = None,
    json_out: JsonOpt = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="Print the matched-layer table as CSV on stdout.")
    ] = False,
    figures: Annotated[bool, typer.Option(help="Write figures into --out.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Representation similarity of two models, layer by layer (CKA, SVCCA, PWCCA, Procrustes).

    Both models see the same samples in the same batches. Every chosen layer of MODEL_A is
    compared with every chosen layer of MODEL_B; the matched layers (same name) form the
    diagonal table and the similarity-vs-depth figure. Linear CKA (plain and debiased) is
    streamed over every sample in memory flat in N; the other metrics use the first --sample
    samples.
    """
    from spectral_probe._io import check_writable_dir
    from spectral_probe.errors import ConfigError

    with long_lived():
        from spectral_probe.analysis import compare_features

    metrics = list(metric) if metric else ["cka", "debiased-cka"]
    unknown = [m for m in metrics if m not in METRIC_NAMES]
    if unknown:
        raise ConfigError(f"expected --metric in {list(METRIC_NAMES)}, found {unknown[0]!r}")
    if out is not None:
        check_writable_dir(out)
    reading = {
        "split": split,
        "batch_size": batch_size,
        "max_batches": max_batches,
        "seed": seed,
        "image_size": image_size,
        "interpolation": interpolation,
        "pool": pool.value,
        "device": device,
        "amp": amp,
        "workers": workers,
    }
    reader = feature_reader(data, **reading)
    with progress_bar("comparing features", quiet=quiet) as update:
        result = compare_features(
            model_a,
            model_b,
            reader,
            layers=layers,
            layers_b=layers_b,
            metrics=metrics,
            sample=sample,
            rbf_sigma=rbf_sigma,
            svcca_keep=svcca_keep,
            arch_a=arch,
            arch_b=arch,
            progress=update,
        )
    options = {
        "model_a": model_a,
        "model_b": model_b,
        "data": data,
        **reading,
        "layers": layers,
        "layers_b": layers_b,
        "metric": metrics,
        "sample": sample,
        "rbf_sigma": rbf_sigma,
        "svcca_keep": svcca_keep,
        "arch": arch,
    }
    save_and_show(
        result,
        command="compare-features",
        options=options,
        out=out,
        figures=(lambda d: _write_figures(result, d)) if figures else None,
        json_out=json_out,
        csv_out=csv_out,
        csv_frame=result.matched,
        summary=lambda: _print_summary(result),
    )


def _write_figures(result: Any, directory: Path) -> None:
    from spectral_probe.plotting import save_figures, similarity_figures

    save_figures(similarity_figures(result, directory), processes=1)


def _print_summary(result: Any) -> None:
    meta = result.meta
    df = result.matched.copy()
    df["layer"] = [a if a == b else f"{a} / {b}" for a, b in zip(df["layer_a"], df["layer_b"])]
    cols = ["layer", "d_a", *result.metrics]
    title = f"{meta['model_a']} vs {meta['model_b']} on {meta['data']} ({meta['split']}), matched layers"
    print_frame(df, cols, headers=["layer", "d", *result.metrics], title=title)
    sampled = [m for m in result.metrics if m not in ("cka", "debiased-cka")]
    note = f"cka / debiased-cka over {meta['n_samples']} samples"
    if sampled:
        note += f"; {', '.join(sampled)} over the first {meta['sample']}"
    if "procrustes" in result.metrics:
        note += "; procrustes is a distance (0 = same)"
    console.print(note + "; --out for the layer x layer tables and figures", style="dim")
    console.print(
        f"compared {len(df)} matched layer(s) in {meta['seconds']:.1f} s on {meta['device']}"
    )
