"""``spectral-probe layers``: a model's weight matrices, named modules or ESD metrics."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    QuietOpt,
    console,
    handles_errors,
    long_lived,
    parse_kinds,
    print_frame,
    print_json,
    print_records,
    progress_bar,
    records_csv,
    save_and_show,
    stdout,
)
from ._weights import (
    ExcludeOpt,
    IncludeOpt,
    KindsOpt,
    SplitFusedOpt,
    note_inferred_specs,
    null,
    print_esd_summary,
    print_notes,
    quiet_libraries,
    submit_esd_figures,
)

app = typer.Typer()


class EsdConv(str, Enum):
    unfolded = "unfolded"
    slices = "slices"


ModelArg = Annotated[str, typer.Argument(help="Model spec or checkpoint path.")]
ArchOpt = Annotated[
    str | None, typer.Option(help="Architecture spec for a state-dict file without a sidecar.")
]
SplitGroupsOpt = Annotated[bool, typer.Option(help="One row per group of grouped convolutions.")]
ModulesOpt = Annotated[
    bool,
    typer.Option(
        "--modules", help="List every named module (the names --layer accepts for features)."
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="Print as CSV.")]
EsdOpt = Annotated[
    bool,
    typer.Option(
        "--esd",
        help="Heavy-tailed ESD metrics per layer, as WeightWatcher: alpha, D, xmin, alpha-hat, norms, MP soft rank.",
    ),
]
EsdConvOpt = Annotated[
    EsdConv,
    typer.Option(
        "--esd-conv",
        help="Conv ESD: the unfolded matrix, or WeightWatcher's pooled per-kernel-position slices.",
    ),
]
NoMpOpt = Annotated[
    bool,
    typer.Option("--no-mp", help="With --esd: skip the Marchenko-Pastur fit (mp_softrank...)."),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out",
        "-o",
        help="With --esd: write esd.csv, eigenvalues.csv, results.json, config.json and figures here.",
    ),
]
EsdLayerOpt = Annotated[
    list[str] | None,
    typer.Option("--esd-layer", help="Layer for the ESD-with-fit figure (repeatable)."),
]
FiguresOpt = Annotated[bool, typer.Option(help="With --esd --out: write figures.")]


@app.command("layers")
@handles_errors
def layers_cmd(
    model: ModelArg,
    arch: ArchOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    kinds: KindsOpt = "conv,linear,attention",
    split_groups: SplitGroupsOpt = False,
    split_fused: SplitFusedOpt = False,
    modules: ModulesOpt = False,
    json_out: JsonOpt = False,
    csv_out: CsvOpt = False,
    esd: EsdOpt = False,
    esd_conv: EsdConvOpt = EsdConv.unfolded,
    no_mp: NoMpOpt = False,
    out: OutOpt = None,
    esd_layer: EsdLayerOpt = None,
    figures: FiguresOpt = True,
    quiet: QuietOpt = False,
) -> None:
    """List a model's weight matrices (or, with --modules, every named module; with --esd, their ESD metrics)."""
    _check_flags(esd=esd, out=out, modules=modules, split_fused=split_fused)
    filters = {"include": include, "exclude": exclude}
    if esd:
        _layers_esd(
            model, arch=arch, **filters, kinds=kinds, split_groups=split_groups,
            conv=esd_conv.value, mp=not no_mp, out=out, esd_layer=esd_layer, figures=figures,
            json_out=json_out, csv_out=csv_out, quiet=quiet,
        )  # fmt: skip
        return
    if not modules and not split_groups and arch is None:
        from ._layer_tables import shipped_layer_table

        # a bundled model's table ships as data: listed without torch or building the model
        shipped = shipped_layer_table(model, **filters, kinds=parse_kinds(kinds))
        if shipped is not None:
            if json_out:
                print_json(shipped.layers)
            elif csv_out:
                stdout.file.write(records_csv(shipped.layers, shipped.columns))
            else:
                title = _layers_title(shipped.spec, len(shipped.layers), shipped.head)
                print_records(shipped.layers, shipped.columns, title=title)
            return
    from spectral_probe.analysis import check_split_groups, uses_sources

    if uses_sources(model, model, arch, arch):  # read tensors, build nothing
        check_split_groups(split_groups, (model, arch))
        kinds_of = {} if modules else {"kinds": parse_kinds(kinds)}
        df, title = _source_table(model, arch, filters | kinds_of, split_fused, modules)
    else:
        df, title = _built_table(model, arch, filters, kinds, split_groups, modules)
    _print_table(df, json_out, csv_out, title)


def _check_flags(*, esd: bool, out: Path | None, modules: bool, split_fused: bool) -> None:
    """One line for flags that do not go together."""
    from spectral_probe.errors import ConfigError

    if out is not None and not esd:
        raise ConfigError("expected --out together with --esd, found --out alone")
    if esd and modules:
        raise ConfigError("expected either --esd or --modules, found both")
    if esd and split_fused:
        raise ConfigError(
            "expected --split-fused without --esd (it splits the listing), found both"
        )


def _source_table(
    model: str, arch: str | None, filters: dict[str, Any], split_fused: bool, modules: bool
) -> tuple[Any, str]:
    """The matrices of a weight file or directory (or what an adapter updates), or with
    ``modules`` the modules its tensor names hold, read as tensors."""
    from spectral_probe.analysis import is_plain_file
    from spectral_probe.extract import adapter_table, source_layer_table, source_module_table
    from spectral_probe.sources import AdapterSource, open_source

    with open_source(model) as source:
        if modules:
            df = source_module_table(source, **filters)
            title = f"{model}: {len(df)} modules"
        elif isinstance(source, AdapterSource):  # what the adapter updates, not its factors
            df = adapter_table(source)
            title = f"{model}: LoRA adapter updating {int((df['rank'] > 0).sum())} layers"
        else:
            df = source_layer_table(source, **filters, split_fused=split_fused)
            title = _layers_title(model, len(df), None)
        notes = list(source.notes)
    if is_plain_file(model, arch) and not isinstance(source, AdapterSource):
        note_inferred_specs([model])
    print_notes(notes)
    return df, title


def _built_table(
    model: str,
    arch: str | None,
    filters: dict[str, Any],
    kinds: str,
    split_groups: bool,
    modules: bool,
) -> tuple[Any, str]:
    """The weight matrices (or every named module) of a model built from its spec."""
    from spectral_probe.extract import layer_table, module_table
    from spectral_probe.models import load_model

    loaded = load_model(model, arch=arch)
    if modules:
        df = module_table(loaded.model, **filters)
        return df, f"{loaded.spec}: {len(df)} modules"
    df = layer_table(loaded.model, **filters, kinds=parse_kinds(kinds), split_groups=split_groups)
    return df, _layers_title(loaded.spec, len(df), loaded.head)


def _print_table(df: Any, json_out: bool, csv_out: bool, title: str) -> None:
    if json_out:
        print_json(df.to_dict(orient="records"))
    elif csv_out:
        stdout.file.write(df.to_csv(index=False))
    else:
        print_frame(df, list(df.columns), title=title)


def _layers_title(spec: str, count: int, head: str | None) -> str:
    return f"{spec}: {count} weight matrices" + (f" (head: {head})" if head else "")


def _layers_esd(
    model: str,
    *,
    arch: str | None,
    include: str | None,
    exclude: str | None,
    kinds: str,
    split_groups: bool,
    conv: str,
    mp: bool,
    out: Path | None,
    esd_layer: list[str] | None,
    figures: bool,
    json_out: bool,
    csv_out: bool,
    quiet: bool,
) -> None:
    from spectral_probe._io import check_writable_dir
    from spectral_probe.plotting import FigureWorker

    if out is not None:
        check_writable_dir(out)
    quiet_libraries()
    # forked before the heavy imports (see compare-weights); plot_esd_fits imports torch
    worker = FigureWorker(
        enabled=out is not None and figures, preload=("spectral_probe.spectral.esd",)
    )
    with worker:
        from spectral_probe.analysis import uses_sources

        loaded: Any = model  # weight files are read tensor by tensor inside esd_layers
        if not uses_sources(model, model, arch, arch):
            with long_lived():
                from spectral_probe.models import load_model

                with console.status("loading model...", spinner="dots") if not quiet else null():
                    loaded = load_model(model, arch=arch)
        from spectral_probe.analysis.esd import esd_layers

        with progress_bar("fitting layer ESDs", quiet=quiet) as update:
            result = esd_layers(
                loaded,
                include=include,
                exclude=exclude,
                kinds=parse_kinds(kinds),
                split_groups=split_groups,
                conv=conv,  # type: ignore[arg-type]
                mp=mp,
                progress=update,  # type: ignore[arg-type]
            )
        if isinstance(loaded, str) and "inferred_arch" in result.meta:
            note_inferred_specs([model])
        options = {
            "model": model,
            "arch": arch,
            "include": include,
            "exclude": exclude,
            "kinds": kinds,
            "split_groups": split_groups,
            "esd_conv": conv,
            "mp": mp,
            "esd_layer": esd_layer,
        }

        save_and_show(
            result,
            command="layers --esd",
            options=options,
            out=out,
            figures=(lambda d: submit_esd_figures(worker, result, d, esd_layer))
            if figures
            else None,
            figures_done=worker.wait,
            json_out=json_out,
            csv_out=csv_out,
            csv_frame=result.layers,
            summary=lambda: _print_esd(result, conv, mp),
        )


def _print_esd(result: Any, conv: str, mp: bool) -> None:
    """The ESD table of ``layers --esd``, the layers without α and the summary line."""
    df = result.layers.copy()
    df["shape"] = df["rows"].astype(str) + "x" + df["cols"].astype(str)
    df["alpha"] = [f"{a:.2f}" if a == a else "–" for a in df["alpha"]]
    cols = ["layer", "shape", "alpha", "D", "n_tail", "alpha_hat", "mp_softrank", "warning"]
    heads = ["layer", "matrix", "α", "D", "tail", "α̂", "MP soft r.", "warning"]
    if not mp:
        cols.remove("mp_softrank")
        heads.remove("MP soft r.")
    print_frame(
        df,
        cols,
        headers=heads,
        title=f"{result.meta['model']}: ESD of {len(df)} weight matrices (conv: {conv})",
    )
    missing = result.layers[result.layers["alpha"].isna()]
    for name, reason in zip(missing["layer"].head(5), missing["alpha_reason"].head(5)):
        console.print(f"α missing for {name}: {reason}", style="dim")
    print_esd_summary(result.summary())
    console.print(
        "--json or --csv for every column (xmin, norms, stable rank, MP bulk edge...)",
        style="dim",
    )
