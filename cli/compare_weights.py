"""``spectral-probe compare-weights``: two models (or one base and several fine-tunes) layer by layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._common import (
    Executor,
    JsonOpt,
    OutOpt,
    QuietOpt,
    console,
    handles_errors,
    long_lived,
    parse_kinds,
    progress_bar,
    save_and_show,
)
from ._compare_options import (
    ArchAOpt,
    ArchBOpt,
    ArchOpt,
    CsvOpt,
    DeviceOpt,
    EsdLayerOpt,
    EsdOpt,
    ExecutorOpt,
    FiguresOpt,
    IntruderEpsilonOpt,
    IntruderKOpt,
    MaxParallelOpt,
    Method,
    MethodOpt,
    ModelA,
    ModelsB,
    PlotLayerOpt,
    ScaleIntrudersOpt,
    ShardsOpt,
    SimilarityLayerOpt,
    SkipNonfiniteOpt,
    SlurmOpt,
    SplitGroupsOpt,
    SubspaceRankOpt,
    ThresholdOpt,
    TopKOpt,
    TopOpt,
    Vectors,
    VectorsOpt,
    WindowOpt,
    WriteAdapterOpt,
    WriteMergedOpt,
)
from ._compare_print import print_many, print_summary
from ._weights import (
    ExcludeOpt,
    IncludeOpt,
    KindsOpt,
    SplitFusedOpt,
    check_layers,
    note_inferred_specs,
    null,
    print_notes,
    quiet_libraries,
)

app = typer.Typer()


@app.command("compare-weights")
@handles_errors
def compare_weights_cmd(
    model_a: ModelA,
    models_b: ModelsB,
    arch: ArchOpt = None,
    arch_a: ArchAOpt = None,
    arch_b: ArchBOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    kinds: KindsOpt = "conv,linear,attention",
    split_groups: SplitGroupsOpt = False,
    split_fused: SplitFusedOpt = False,
    top: TopOpt = None,
    skip_nonfinite: SkipNonfiniteOpt = False,
    vectors: VectorsOpt = Vectors.left,
    top_k: TopKOpt = 10,
    threshold: ThresholdOpt = 0.5,
    window: WindowOpt = 0.05,
    method: MethodOpt = Method.gram,
    device: DeviceOpt = "auto",
    out: OutOpt = None,
    json_out: JsonOpt = False,
    csv_out: CsvOpt = False,
    plot_layer: PlotLayerOpt = None,
    figures: FiguresOpt = True,
    similarity_layer: SimilarityLayerOpt = None,
    quiet: QuietOpt = False,
    esd: EsdOpt = False,
    esd_layer: EsdLayerOpt = None,
    intruder_k: IntruderKOpt = 10,
    intruder_epsilon: IntruderEpsilonOpt = 0.5,
    subspace_rank: SubspaceRankOpt = None,
    scale_intruders: ScaleIntrudersOpt = None,
    write_merged: WriteMergedOpt = None,
    write_adapter: WriteAdapterOpt = None,
    shards: ShardsOpt = None,
    executor: ExecutorOpt = Executor["local"],  # type: ignore[valid-type]
    max_parallel: MaxParallelOpt = None,
    slurm: SlurmOpt = None,
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

    if out is not None:
        check_writable_dir(out)
    if scale_intruders is not None or write_merged is not None or write_adapter is not None:
        from spectral_probe.analysis.mitigate import check_mitigation

        check_mitigation(scale_intruders, write_merged, write_adapter, fine_tunes=len(models_b))
    options = {
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
    }
    shows: dict[str, Any] = {
        "out": out,
        "figures": figures,
        "json_out": json_out,
        "csv_out": csv_out,
    }
    quiet_libraries()
    # forked before the heavy imports: matplotlib's import and warm-up overlap torch's
    worker = FigureWorker(
        enabled=out is not None and figures, preload=("spectral_probe.spectral.esd",) if esd else ()
    )
    with worker:
        if len(models_b) > 1:
            _compare_many(model_a, models_b, worker=worker, quiet=quiet, options=options, **shows)
            return
        jobs = (
            None if shards is None and not slurm else (shards, executor.value, max_parallel, slurm)
        )
        result, streamed, a, b = _compare_one(model_a, models_b[0], options, out, jobs, quiet)
        saved = {"model_a": model_a, "model_b": models_b[0], **options, "kinds": kinds}
        saved |= {"plot_layer": plot_layer, "similarity_layer": similarity_layer}
        saved |= {"esd_layer": esd_layer}
        if jobs is not None:
            saved |= {"shards": shards, "executor": executor.value}
        chosen = (plot_layer, esd_layer, (a, b, similarity_layer))
        _save(result, worker, _in_saved_order(saved), *chosen, **shows)
        if streamed and out is not None:  # the results are in place: the per-layer store goes
            from spectral_probe.analysis import clear_store

            clear_store(out.parent / f".{out.name}.layers")
        if scale_intruders is not None:
            layers = {k: options[k] for k in ("include", "exclude", "kinds")}
            _write_mitigated(
                model_a, models_b[0], scale_intruders, intruder_k, intruder_epsilon,
                write_merged, write_adapter, **layers,
            )  # fmt: skip


def _save(
    result: Any,
    worker: Any,
    options: dict[str, Any],
    plot_layer: list[str] | None,
    esd_layer: list[str] | None,
    similarity: tuple[Any, Any, str | None],
    *,
    out: Path | None,
    figures: bool,
    json_out: bool,
    csv_out: bool,
) -> None:
    """The tables, figures and config into ``--out``; JSON, CSV or the summary on stdout."""
    save_and_show(
        result,
        command="compare-weights",
        options=options,
        out=out,
        figures=(lambda d: _submit_figures(worker, result, d, plot_layer, esd_layer, similarity))
        if figures
        else None,
        figures_done=worker.wait,
        json_out=json_out,
        csv_out=csv_out,
        csv_frame=result.layers,
        summary=lambda: print_summary(result),
    )


#: the order of the options in config.json (as before the options were built once)
_SAVED_ORDER = (
    "model_a", "model_b", "arch_a", "arch_b", "include", "exclude", "kinds", "split_groups",
    "vectors", "top_k", "threshold", "window", "method", "device", "plot_layer",
    "similarity_layer", "esd",
    "esd_layer", "skip_nonfinite", "top", "intruder_k", "intruder_epsilon", "subspace_rank",
)  # fmt: skip


def _in_saved_order(saved: dict[str, Any]) -> dict[str, Any]:
    return {k: saved[k] for k in _SAVED_ORDER} | {
        k: v for k, v in saved.items() if k not in _SAVED_ORDER
    }


def _compare_one(
    model_a: str,
    model_b: str,
    options: dict[str, Any],
    out: Path | None,
    jobs: tuple[int | None, str, int | None, list[str] | None] | None,
    quiet: bool,
) -> tuple[Any, bool, Any, Any]:
    """One pair: read as tensors, or built as models; in this process or over ``jobs``
    (``--shards``); notes on stderr. Returns the result, whether tensors were read, and the
    two models as compared (specs or loaded models)."""
    from spectral_probe.analysis import uses_sources

    streamed = uses_sources(model_a, model_b, options["arch_a"], options["arch_b"])
    a: Any = model_a
    b: Any = model_b
    if streamed or jobs is not None:  # read tensor by tensor (in the jobs); no model is built
        from spectral_probe.analysis import compare_weights
    else:
        with long_lived():
            from spectral_probe.analysis import compare_weights
            from spectral_probe.models import load_model

            with console.status("loading models...", spinner="dots") if not quiet else null():
                a = load_model(model_a, arch=options["arch_a"])
                b = load_model(model_b, arch=options["arch_b"])
    run: Any = compare_weights if jobs is None else _sharded(out, *jobs)
    resume = {"resume": _resume_dir(out) if streamed else None} if jobs is None else {}
    with progress_bar("comparing layers", quiet=quiet) as update:
        result = run(a, b, progress=update, **resume, **options)
    if streamed:
        tags = result.meta.get("inferred_arch", {}).get("models", [])
        note_inferred_specs([{"model_a": model_a, "model_b": model_b}[t] for t in tags])
    print_notes(result.meta.get("notes", []))
    return result, streamed, a, b


def _sharded(
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
    from spectral_probe.analysis import compare_weights, uses_sources
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
        summary=lambda: print_many(result),
    )
    if out is not None:
        from spectral_probe.analysis import clear_store

        clear_store(out.parent / f".{out.name}.layers")


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
