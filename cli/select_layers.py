"""``spectral-probe select-layers``: which matrices to fine-tune, from the weights alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    JsonOpt,
    console,
    handles_errors,
    invocation,
    print_json,
    print_records,
    progress_bar,
)

app = typer.Typer()

# spectral_probe.analysis.select.SCORES, spelt out so that --help does not import the library
SCORE_NAMES = ("snr", "mp", "gavish-donoho", "mp-soft-rank", "alpha")


@app.command("select-layers")
@handles_errors
def select_layers_cmd(
    model: Annotated[
        str,
        typer.Argument(
            help="A transformers directory (sharded or not), a weight file, a peft adapter "
            "directory, or hf:PATH_OR_ID. Read one tensor at a time; no model is built."
        ),
    ],
    top_percent: Annotated[
        float,
        typer.Option("--top-percent", help="Percent of each weight type to select, in (0, 100]."),
    ] = 50.0,
    score: Annotated[
        str, typer.Option("--score", help=f"One of {', '.join(SCORE_NAMES)}.")
    ] = "snr",
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            help="Regex (re.search) over module names [default: every *.weight, 1-D or 2-D].",
            show_default=False,
        ),
    ] = None,
    rank: Annotated[
        str,
        typer.Option(
            "--rank",
            help="Suggested adapter rank per matrix: gavish-donoho, or energy:F (the smallest "
            "rank holding the fraction F of the squared singular values).",
        ),
    ] = "gavish-donoho",
    max_rank: Annotated[int, typer.Option("--max-rank", help="Cap of the suggested ranks.")] = 64,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="The pre-trained model MODEL was fine-tuned from: ranks are then those of the "
            "update MODEL - BASE. Needed when MODEL is a peft adapter (merged into BASE).",
            show_default=False,
        ),
    ] = None,
    embeddings: Annotated[
        bool,
        typer.Option(
            "--embeddings/--no-embeddings",
            help="Start the YAML with Spectrum's ^lm_head.weight$ and "
            "^model.embed_tokens.weight$ lines.",
        ),
    ] = True,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Write snr.json, scores.csv, unfrozen_parameters.yaml, peft_config.json, "
            "results.json, config.json and figures/ here (atomically).",
        ),
    ] = None,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Draw the scores-by-depth figure.")
    ] = True,
    workers: Annotated[
        int | None,
        typer.Option(
            help="CPU threads, one matrix each [default: torch's threads].", show_default=False
        ),
    ] = None,
    json_out: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Score every weight matrix and select the top percent of each type to fine-tune.

    The default score is Spectrum's SNR (Hartford et al. 2024), computed exactly as its
    spectrum.py does; the outputs are its snr.json layout, axolotl's unfrozen_parameters YAML
    and a peft LoraConfig with a suggested rank per matrix.
    """
    from contextlib import ExitStack

    from spectral_probe.analysis.select import check_options, score_layers
    from spectral_probe.errors import ConfigError
    from spectral_probe.sources import AdapterSource, merge_adapter, open_source

    options = {
        "top_percent": top_percent,
        "score": score,
        "layers": layers,
        "rank": rank,
        "max_rank": max_rank,
        "embeddings": embeddings,
        "base": base,
    }
    check_options(score=score, top_percent=top_percent, rank=rank, max_rank=max_rank)
    with ExitStack() as stack:
        src: Any = stack.enter_context(open_source(model))
        base_src = stack.enter_context(open_source(base)) if base is not None else None
        if isinstance(src, AdapterSource):
            if base_src is None:
                raise ConfigError(f"expected --base BASE for the peft adapter {model}, found none")
            src = merge_adapter(base_src, src)
        update = stack.enter_context(progress_bar("scoring matrices", quiet=quiet))
        result = score_layers(
            src,
            base=base_src,
            score=score,
            top_percent=top_percent,
            layers=layers,
            rank=rank,
            max_rank=max_rank,
            workers=workers,
            progress=update,
        )
    if out is not None:
        _write(result, out, embeddings=embeddings, figures=figures, options=options)
    if json_out:
        print_json(result.to_dict())
        return
    _summary(result)
    if out is not None:
        console.print(f"wrote results to [bold]{out}[/]")


def _write(
    result: Any, out: Path, *, embeddings: bool, figures: bool, options: dict[str, Any]
) -> None:
    from spectral_probe._io import atomic_write_text, staged_dir, write_json

    with staged_dir(out) as tmp:
        write_json(tmp / "snr.json", result.spectrum_json(), indent=4)
        result.to_csv(tmp)
        atomic_write_text(
            tmp / "unfrozen_parameters.yaml", result.unfrozen_parameters_yaml(embeddings=embeddings)
        )
        write_json(tmp / "peft_config.json", result.peft_config())
        result.to_json(tmp / "results.json")
        write_json(tmp / "config.json", invocation("select-layers", options))
        if figures:
            from spectral_probe.plotting import plot_scores_by_depth, save_figure

            save_figure(plot_scores_by_depth(result), tmp / "figures" / "scores_by_depth.png")


def _summary(result: Any) -> None:
    frame = result.scores
    rows = []
    for wtype, group in frame.groupby("type", sort=True):
        chosen = group[group["selected"]]
        blocks = ", ".join(str(int(x)) for x in sorted(chosen["layer"].dropna()))
        rows.append(
            {
                "type": str(wtype),
                "matrices": len(group),
                "selected": len(chosen),
                "blocks": blocks or ("–" if chosen.empty else "(outside blocks)"),
            }
        )
    meta = result.meta
    print_records(
        rows,
        ["type", "matrices", "selected", "blocks"],
        title=f"top {meta['top_percent']:g}% per type by {meta['score']} ({meta['model']})",
    )
