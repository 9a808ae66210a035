"""``spectral-probe compare-weights``: two models (or one base and several fine-tunes) layer by layer."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from spectral_probe._jobs import EXECUTORS

from ._common import (
    JsonOpt,
    OutOpt,
    console,
    handles_errors,
    long_lived,
    parse_kinds,
    print_frame,
    progress_bar,
    save_and_show,
)
from ._weights import (
    ExcludeOpt,
    IncludeOpt,
    KindsOpt,
    SplitFusedOpt,
    check_layers,
    note_inferred,
    note_inferred_specs,
    null,
    print_esd_summary,
    print_notes,
    quiet_libraries,
)

app = typer.Typer()


class Vectors(str, Enum):
    left = "left"
    right = "right"


class Method(str, Enum):
    gram = "gram"
    svd = "svd"


Executor = Enum("Executor", {name: name for name in EXECUTORS}, type=str)  # type: ignore[misc]


@app.command("compare-weights")
@handles_errors
def compare_weights_cmd(
    model_a: Annotated[
        str, typer.Argument(help="Reference (pre-trained) model spec or checkpoint path.")
    ],
    models_b: Annotated[
        list[str],
        typer.Argument(
            metavar="MODEL_B...",
            help="Compared (fine-tuned) model spec or checkpoint path; several fine-tunes of MODEL_A give one row each.",
        ),
    ],
    arch: Annotated[
        str | None,
        typer.Option(
            help="Architecture spec for state-dict files without a sidecar (both models)."
        ),
    ] = None,
    arch_a: Annotated[str | None, typer.Option(help="Architecture spec for MODEL_A only.")] = None,
    arch_b: Annotated[str | None, typer.Option(help="Architecture spec for MODEL_B only.")] = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    kinds: KindsOpt = "conv,linear,attention",
    split_groups: Annotated[
        bool, typer.Option(help="Compare grouped convolutions group by group.")
    ] = False,
    split_fused: SplitFusedOpt = False,
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            help="Only the leading K singular triplets per matrix, by randomized SVD with power iterations (residual bound per layer: top_residual).",
        ),
    ] = None,
    skip_nonfinite: Annotated[
        bool,
        typer.Option(
            "--skip-nonfinite",
            help="List and skip layers whose weights hold NaN/Inf (weight files; default: exit 2 naming the tensor).",
        ),
    ] = False,
    vectors: Annotated[
        Vectors, typer.Option(help="Corresponding angles of left or right singular vectors.")
    ] = Vectors.left,
    top_k: Annotated[
        int, typer.Option(help="Size of the leading subspaces compared by principal angles.")
    ] = 10,
    threshold: Annotated[
        float, typer.Option(help="first_below: first index whose |cos| is below this.")
    ] = 0.5,
    window: Annotated[
        float,
        typer.Option(
            help="Spectral window for cos_window: singular values within this fraction of sigma_i count as near-equal."
        ),
    ] = 0.05,
    method: Annotated[
        Method, typer.Option(help="gram (fast, float64) or svd (LAPACK).")
    ] = Method.gram,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    out: OutOpt = None,
    json_out: JsonOpt = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="Print the per-layer summary as CSV on stdout.")
    ] = False,
    plot_layer: Annotated[
        list[str] | None,
        typer.Option(
            "--plot-layer",
            help="Layer for the angle/spectrum figures (repeatable) [default: first conv, first block, last block].",
        ),
    ] = None,
    figures: Annotated[bool, typer.Option(help="Write figures into --out.")] = True,
    similarity_layer: Annotated[
        str | None,
        typer.Option(
            help="Layer of the |cos| similarity figure [default: the one with most intruders]."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    esd: Annotated[
        bool,
        typer.Option(
            "--esd",
            help="Also WeightWatcher's heavy-tailed ESD metrics (alpha...) of both models, and delta alpha.",
        ),
    ] = False,
    esd_layer: Annotated[
        list[str] | None,
        typer.Option(
            "--esd-layer",
            help="Layer for the ESD-with-fit figure (repeatable) [default: first, lowest and highest alpha, last].",
        ),
    ] = None,
    intruder_k: Annotated[
        int,
        typer.Option(
            "--intruder-k",
            help="Leading singular vectors of MODEL_B examined for intruder dimensions (peft's top_k); 0: no intruders or update structure.",
        ),
    ] = 10,
    intruder_epsilon: Annotated[
        float,
        typer.Option(
            "--intruder-epsilon",
            help="Intruder: largest |cos| with every singular vector of MODEL_A below this (peft's threshold_epsilon).",
        ),
    ] = 0.5,
    subspace_rank: Annotated[
        int | None,
        typer.Option(
            "--subspace-rank",
            help="r of MODEL_A's top-r/bottom-r subspaces for the update's energy shares [default: the adapter's rank, else 8].",
        ),
    ] = None,
    scale_intruders: Annotated[
        float | None,
        typer.Option(
            "--scale-intruders",
            metavar="LAMBDA",
            help="Scale MODEL_B's intruder components by LAMBDA (peft's mitigation uses 0.75) and write the result (--write-merged, --write-adapter).",
        ),
    ] = None,
    write_merged: Annotated[
        Path | None,
        typer.Option(
            "--write-merged",
            help="With --scale-intruders: a new safetensors model directory (an adapter merged into MODEL_A).",
        ),
    ] = None,
    write_adapter: Annotated[
        Path | None,
        typer.Option(
            "--write-adapter",
            help="With --scale-intruders and an adapter as MODEL_B: a new peft adapter directory with refitted factors.",
        ),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option(
            "--shards",
            help="Split the layers of weight files into N jobs of about equal cost (--executor); the merged result equals a single-process run.",
            show_default=False,
        ),
    ] = None,
    executor: Annotated[
        Executor,  # type: ignore[valid-type]
        typer.Option(
            help="Where the --shards jobs run: local (processes), slurm (a job array) or inline (this process)."
        ),
    ] = Executor["local"],  # type: ignore[valid-type]
    max_parallel: Annotated[
        int | None,
        typer.Option(
            help="--shards jobs at once (local) or the SLURM array's parallelism [default: CPU count; slurm: all].",
            show_default=False,
        ),
    ] = None,
    slurm: Annotated[
        list[str] | None,
        typer.Option(
            "--slurm",
            help="SLURM parameter KEY=VALUE for --shards, repeatable (as sweep --slurm).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compare two models layer by layer: singular values and corresponding angles.

    Every layer both models share (same name and shape) is unfolded to a matrix and
    decomposed; the i-th singular vectors of the two are compared (|cos theta_i|, paper
    Definition 1), with Wedin bounds per index and a spectral-window variant that tolerates
    reordering among near-equal singular values. Intruder dimensions (Shuttleworth et al.
    2025, peft's detector) and the structure of the update B - A come from the same
    decompositions (docs/what-changed.md).

    Model directories (transformers, single or sharded), hf: ids, state-dict files
    (torch.compile, DDP, Lightning .ckpt) and a peft adapter directory as MODEL_B (compared as
    MODEL_A + adapter) are read tensor by tensor, without building the models.
    """
    from spectral_probe._io import check_writable_dir
    from spectral_probe.plotting import FigureWorker

    model_b = models_b[0]
    if out is not None:
        check_writable_dir(out)
    if len(models_b) > 1 and scale_intruders is not None:
        from spectral_probe.errors import ConfigError

        raise ConfigError(
            f"expected one fine-tune with --scale-intruders, found {len(models_b)}; run one at a time"
        )
    if scale_intruders is not None or write_merged is not None or write_adapter is not None:
        from spectral_probe.analysis.mitigate import check_mitigation

        check_mitigation(scale_intruders, write_merged, write_adapter)
    quiet_libraries()
    # forked before the heavy imports: matplotlib's import and warm-up overlap torch's
    worker = FigureWorker(
        enabled=out is not None and figures, preload=("spectral_probe.spectral.esd",) if esd else ()
    )
    with worker:
        if len(models_b) > 1:
            _compare_many(
                model_a,
                models_b,
                worker=worker,
                out=out,
                figures=figures,
                json_out=json_out,
                csv_out=csv_out,
                quiet=quiet,
                options={
                    "arch_a": arch_a or arch,
                    "arch_b": arch_b or arch,
                    "include": include,
                    "exclude": exclude,
                    "kinds": parse_kinds(kinds),
                    "split_groups": split_groups,
                    "vectors": vectors.value,
                    "top_k": top_k,
                    "threshold": threshold,
                    "window": window,
                    "method": method.value,
                    "device": device,
                    "esd": esd,
                    "skip_nonfinite": skip_nonfinite,
                    "top": top,
                    "intruder_k": intruder_k,
                    "intruder_epsilon": intruder_epsilon,
                    "subspace_rank": subspace_rank,
                    **({"split_fused": True} if split_fused else {}),
                },
            )
            return
        from spectral_probe.analysis._sources import uses_sources

        streamed = uses_sources(model_a, model_b, arch_a or arch, arch_b or arch)
        if streamed:  # read tensor by tensor inside compare_weights; no model is built
            from spectral_probe.analysis import compare_weights

            a: Any = model_a
            b: Any = model_b
        else:
            with long_lived():
                from spectral_probe.analysis import compare_weights
                from spectral_probe.models import load_model

                with console.status("loading models...", spinner="dots") if not quiet else null():
                    a = load_model(model_a, arch=arch_a or arch, infer_arch=True)
                    b = load_model(model_b, arch=arch_b or arch, infer_arch=True)
            note_inferred(a, b)
        run = compare_weights
        if shards is not None or slurm:
            run = _sharded(streamed, out, shards, executor.value, max_parallel, slurm)
        with progress_bar("comparing layers", quiet=quiet) as update:
            result = run(
                a,
                b,
                arch_a=arch_a or arch,
                arch_b=arch_b or arch,
                include=include,
                exclude=exclude,
                kinds=parse_kinds(kinds),
                split_groups=split_groups,
                vectors=vectors.value,
                top_k=top_k,
                threshold=threshold,
                window=window,
                method=method.value,
                device=device,
                progress=update,
                esd=esd,
                skip_nonfinite=skip_nonfinite,
                top=top,
                resume=_resume_dir(out) if streamed and shards is None else None,
                intruder_k=intruder_k,
                intruder_epsilon=intruder_epsilon,
                subspace_rank=subspace_rank,
                **({"split_fused": True} if split_fused else {}),
            )
        options = {
            "model_a": model_a,
            "model_b": model_b,
            "arch_a": arch_a or arch,
            "arch_b": arch_b or arch,
            "include": include,
            "exclude": exclude,
            "kinds": kinds,
            "split_groups": split_groups,
            "vectors": vectors.value,
            "top_k": top_k,
            "threshold": threshold,
            "window": window,
            "method": method.value,
            "device": device,
            "plot_layer": plot_layer,
            "similarity_layer": similarity_layer,
            "esd": esd,
            "esd_layer": esd_layer,
            "skip_nonfinite": skip_nonfinite,
            "top": top,
            "intruder_k": intruder_k,
            "intruder_epsilon": intruder_epsilon,
            "subspace_rank": subspace_rank,
            **({"split_fused": True} if split_fused else {}),
        }
        if streamed:
            tags = result.meta.get("inferred_arch", {}).get("models", [])
            note_inferred_specs([{"model_a": model_a, "model_b": model_b}[t] for t in tags])
        print_notes(result.meta.get("notes", []))
        save_and_show(
            result,
            command="compare-weights",
            options=options,
            out=out,
            figures=(
                lambda d: _submit_figures(
                    worker, result, d, plot_layer, esd_layer, (a, b, similarity_layer)
                )
            )
            if figures
            else None,
            figures_done=worker.wait,
            json_out=json_out,
            csv_out=csv_out,
            csv_frame=result.layers,
            summary=lambda: _print_summary(result),
        )
        if streamed and out is not None:  # the results are in place: the per-layer store goes
            from spectral_probe.analysis._resume import clear_store

            clear_store(out.parent / f".{out.name}.layers")
        if scale_intruders is not None:
            _write_mitigated(
                model_a,
                model_b,
                scale_intruders,
                intruder_k,
                intruder_epsilon,
                write_merged,
                write_adapter,
                include=include,
                exclude=exclude,
                kinds=parse_kinds(kinds),
            )


def _sharded(
    streamed: bool,
    out: Path | None,
    shards: int | None,
    executor: str,
    max_parallel: int | None,
    slurm: list[str] | None,
) -> Any:
    """``compare_weights`` over ``shards`` jobs, its layers stored beside ``--out``."""
    import functools

    from spectral_probe.analysis.sharded import compare_weights_sharded
    from spectral_probe.errors import ConfigError
    from spectral_probe.training import parse_hp

    if shards is None:
        raise ConfigError("expected --shards N with --slurm, found no --shards")
    if not streamed:
        raise ConfigError(
            "expected weight files or directories for --shards (read as tensors in each job), "
            "found model specs that are built as modules"
        )
    return functools.partial(
        compare_weights_sharded,
        shards=shards,
        store=_resume_dir(out),
        executor=executor,
        max_parallel=max_parallel,
        slurm=parse_hp(slurm or []),
    )


def _resume_dir(out: Path | None) -> Path | None:
    """Where finished layers wait for the final write: a hidden sibling of ``--out``."""
    return None if out is None else out.parent / f".{out.name}.layers"


def _submit_figures(
    worker: Any,
    result: Any,
    directory: Path,
    layers: list[str] | None,
    esd_layers: list[str] | None,
    similarity: tuple[Any, Any, str | None] | None = None,
) -> None:
    """Check the chosen layers here (a one-line error), then have ``worker`` draw."""
    from spectral_probe.analysis.layer_similarity import similarity_for
    from spectral_probe.plotting import result_fields
    from spectral_probe.plotting.weight_figures import weight_comparison_figures

    check_layers(layers, "--plot-layer", result.angles)
    check_layers(esd_layers, "--esd-layer", result.layers)
    sim = similarity_for(result, *similarity) if similarity is not None else None
    worker.submit(
        weight_comparison_figures, result_fields(result), directory, layers, esd_layers, sim
    )


def _compare_many(
    model_a: str,
    models_b: list[str],
    *,
    worker: Any,
    out: Path | None,
    figures: bool,
    json_out: bool,
    csv_out: bool,
    quiet: bool,
    options: dict[str, Any],
) -> None:
    """Several fine-tunes of one base: one comparison each, one row per fine-tune."""
    from spectral_probe.analysis import compare_weights
    from spectral_probe.analysis._sources import uses_sources
    from spectral_probe.analysis.fine_tunes import gather_fine_tunes
    from spectral_probe.plotting.weight_figures import fine_tunes_figures

    runs = []
    for i, spec in enumerate(models_b, start=1):
        streamed = uses_sources(model_a, spec, options["arch_a"], options["arch_b"])
        with progress_bar(f"[{i}/{len(models_b)}] {spec}", quiet=quiet) as update:
            runs.append(
                compare_weights(
                    model_a,
                    spec,
                    progress=update,
                    resume=_resume_dir(out) if streamed else None,
                    **options,
                )
            )
        print_notes([f"{spec}: {note}" for note in runs[-1].meta.get("notes", [])])
    result = gather_fine_tunes(runs)
    save_and_show(
        result,
        command="compare-weights",
        options={"model_a": model_a, "models_b": models_b, **options},
        out=out,
        figures=(lambda d: worker.submit(fine_tunes_figures, result.layers, d))
        if figures
        else None,
        figures_done=worker.wait,
        json_out=json_out,
        csv_out=csv_out,
        csv_frame=result.fine_tunes,
        summary=lambda: _print_many(result),
    )
    if out is not None:
        from spectral_probe.analysis._resume import clear_store

        clear_store(out.parent / f".{out.name}.layers")


def _print_many(result: Any) -> None:
    df = result.fine_tunes.copy()
    cols = ["fine_tune", "model_b", "layers", "cos_top", "w_rel_change"]
    heads = ["#", "fine-tune", "layers", "|cos| top", "ΔW/W"]
    if df["intruders"].notna().any():
        cols += [
            "intruders",
            "intruders_right",
            "layers_with_intruders",
            "top_energy",
            "bottom_energy",
        ]
        heads += ["intr. L", "intr. R", "layers w/", "top-r E", "bottom-r E"]
    print_frame(
        df, cols, headers=heads, title=f"{result.meta['model_a']}  vs  {len(df)} fine-tunes"
    )
    console.print(
        "one row per fine-tune (means over layers; intruder counts summed); per layer: "
        "layers.csv / --json",
        style="dim",
    )


def _write_mitigated(
    model_a: str,
    model_b: str,
    lam: float,
    k: int,
    epsilon: float,
    write_merged: Path | None,
    write_adapter: Path | None,
    **layers: Any,
) -> None:
    """--scale-intruders: scaled weights written as a model and/or an adapter, one line."""
    from spectral_probe.analysis.mitigate import mitigate_intruders

    with console.status("scaling intruders...", spinner="dots"):
        done = mitigate_intruders(
            model_a,
            model_b,
            lam=lam,
            k=k or 10,
            epsilon=epsilon,
            write_merged=write_merged,
            write_adapter=write_adapter,
            **layers,
        )
    scaled = done.layers[done.layers["scaled"]]
    console.print(
        f"intruders scaled by λ = {lam:g} in {len(scaled)} layer(s) "
        f"({int(scaled['intruders'].sum())} components); wrote "
        + ", ".join(str(p) for p in done.written)
    )


def _print_summary(result) -> None:  # type: ignore[no-untyped-def]
    df = result.layers.copy()
    df["shape"] = df["rows"].astype(str) + "x" + df["cols"].astype(str)
    df["resolvable"] = df["resolvable_frac"]
    cols = [
        "layer",
        "shape",
        "cos_top",
        "cos_mean",
        "first_below",
        "cos_window_mean",
        "resolvable",
        "w_rel_change",
    ]
    heads = ["layer", "matrix", "|cos| top", "|cos| all", "first<thr", "window", "resolv.", "ΔW/W"]
    df["first_below"] = df["first_below"].map(lambda v: "" if v != v or v is None else str(int(v)))
    if "alpha_a" in df:
        cols += ["alpha_a", "alpha_b", "delta_alpha"]
        heads += ["α A", "α B", "Δα"]
    print_frame(
        df, cols, headers=heads, title=f"{result.meta['model_a']}  vs  {result.meta['model_b']}"
    )
    console.print(
        "|cos| top: mean over the leading 10% of indices; window: alignment with the vectors of "
        "near-equal singular value, beyond chance; resolv.: share of indices with Wedin bound < 1 "
        "(--json for all columns)",
        style="dim",
    )
    if not result.skipped.empty:
        names = ", ".join(result.skipped["layer"].head(5))
        more = f" (+{len(result.skipped) - 5} more)" if len(result.skipped) > 5 else ""
        console.print(
            f"skipped {len(result.skipped)} layer(s) not shared by both models: {names}{more}"
        )
    bad = result.layers[result.layers["status"] != "ok"]
    if not bad.empty:
        console.print(
            f"[yellow]{len(bad)} layer(s) hold NaN/Inf weights and were not analysed: {', '.join(bad['layer'])}[/]"
        )
    if "lora_rank" in df and df["lora_rank"].notna().any():
        updated = df[df["lora_rank"].notna()]
        ranks = ", ".join(str(int(r)) for r in sorted(set(updated["lora_rank"])))
        console.print(
            f"adapter: {len(updated)} layer(s) updated (rank {ranks}); largest update σ1 "
            f"{updated['update_sigma1'].max():.3g}, mean ||sBA||/||W|| "
            f"{updated['update_rel_norm'].mean():.3g} (spectra from the factors: update.csv)"
        )
    if "intruders" in df:
        _print_intruders(result)
    for tag, summary in result.meta.get("esd_summary", {}).items():
        print_esd_summary(summary, f"{tag.upper()}: ")
    console.print(
        f"compared {len(result.layers)} layers in {result.meta['seconds']:.2f} s on {result.meta['device']}"
    )


def _print_intruders(result) -> None:  # type: ignore[no-untyped-def]
    """One line: intruders in total (left, right) and the layers that have them."""
    df = result.layers
    left = df["intruders"].fillna(0)
    hit = df[left > 0]
    meta = result.meta
    names = ", ".join(hit["layer"].head(3)) + (f" (+{len(hit) - 3} more)" if len(hit) > 3 else "")
    console.print(
        f"intruders (k={meta['intruder_k']}, ε={meta['intruder_epsilon']:g}): {int(left.sum())} "
        f"left, {int(df['intruders_right'].fillna(0).sum())} right, in {len(hit)} of {len(df)} "
        f"layer(s){': ' + names if names else ''}; ΔW in A's top-r subspace "
        f"{df['top_energy'].mean():.3g} of its energy on average, bottom-r "
        f"{df['bottom_energy'].mean():.3g} (intruders.csv, sweep.csv)"
    )
