"""Render a :class:`~spectral_probe.report.reproduction.Reproduction` as a Markdown page with
its figures and a JSON of every number (``docs/reproduction.md``).

Nothing on the page is typed in: the verdicts, numbers and figures come from the runs; the
fixed text is the paper's claims, the rules, the commands and the limits of the set-up.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .._io import atomic_write_text
from .reproduction_numbers import FIGURES

if TYPE_CHECKING:
    from ..analysis import FeatureSpectra
    from .reproduction import Reproduction

__all__ = [
    "write_reproduction_page",
    "render_reproduction_markdown",
    "markdown_table",
    "RUN_COMMANDS",
]

#: How the runs behind the page are made (shown on the page).
RUN_COMMANDS = {
    "cpu": "OMP_NUM_THREADS=1 spectral-probe sweep reproduce --executor local --max-parallel 2",
    "quick": "OMP_NUM_THREADS=1 spectral-probe sweep reproduce-quick --executor local --max-parallel 2",
    "paper": "DATA=/data spectral-probe sweep reproduce-paper --executor slurm --slurm partition=gpu "
    "--slurm gpus_per_node=1 --slurm timeout_min=720 --max-parallel 32",
}

_TITLES = {
    "1b": "Figure 1(b): corresponding angles between pre-trained and fine-tuned weights",
    "1c": "Figure 1(c): feature singular values against the sampling rate",
    "1d": "Figure 1(d): the smaller half of the feature singular values",
    "3a": "Figure 3(a): TSVD, error against r",
    "3b": "Figure 3(b): feature singular values with and without BSS",
    "3c": "Figure 3(c): the smaller half, with and without BSS",
    "3d": "Figure 3(d): BSS, error against k",
}

_LIMITS = """\
- **Model.** EfficientNet-Lite0 (4.7 M parameters, depthwise-separable blocks) instead of
  ResNet-50. Its last block (`blocks.6.0`) has a depthwise 3x3 conv whose unfolded matrix
  has 9 columns, and 1x1 convs of 192-1152 rows: the "higher layers" of Figure 1(b) are not
  the same kind of matrix as ResNet-50's `layer4.2` convs, so the leading-10% contrast can
  differ for reasons of shape alone.
- **Data.** Fashion-MNIST (10 classes of 28 px grey clothing, replicated to three channels)
  instead of MIT Indoor 67 (Figure 1) and Stanford Dogs (Figure 3): a target far from
  ImageNet with 6,000 images per class. 1% is 60 images per class, 50% is 3,000: the
  sampled sets are larger than the paper's 15-100% of ~80-120 images per class, so "scarce"
  means something else here.
- **Resolution.** 64 px instead of 224 px: Lite0's last feature map is 2x2 instead of 7x7,
  and the pooled 1280-d feature averages 4 positions. Upsampling the 28 px source further
  adds no information, but features of an ImageNet model at 64 px are further from its
  pre-training distribution, which can change how far the top layers move.
- **Iterations and optimiser.** 2,500 iterations of batch 32 (the paper: 9,000 of batch 48)
  with momentum 0.9; the runs' final training loss is on the page so convergence can be
  judged, but the weights move less in 2,500 steps, which pushes Figure 1(b) towards
  |cos| = 1 everywhere.
- **Batch size of the spectra.** b = 32 singular values per feature matrix (the paper's 48):
  the "smaller half" is 16 values.
- **Normalisation.** The numbers of 1(c,d) and 3(b,c) compare sigma_i / sigma_1 and energy
  shares, not the raw singular values the paper plots: fine-tuning (and BSS) also change the
  overall scale of the features, and a raw comparison would mix that in. Figure 3(b,c) above
  shows raw values; where raw and normalised disagree, the verdict follows the normalised ones.
- **Seeds.** Three seeds give wide t-intervals (t = 4.30): a real but small effect can
  fail the interval rules.
- **Figures 3(a) and 3(d).** The CPU sweep tests 3(d) with one larger k (k = 8 against
  k = 1, at 1% only: the claim is about scarce data) instead of the paper's k = 1, 2, 4, 8 at
  four rates, so it cannot show the claim's second half (a larger k slightly worse with ample
  data). 3(a) needs TSVD runs, which it does not include (another ~0.3 h per r value): 3(a)
  and the full 3(d) grid are decided only by the paper-scale sweep (`reproduce-paper`).
"""


_COST = """\
**How long, and why 64 px.** `OMP_NUM_THREADS=1 python bench/bench_reproduce_cost.py` times
Lite0 + BSS on Fashion-MNIST (batch 32, one torch thread) for 10 and 40 iterations and
divides the difference in CPU time by 30. On the dev box (2 cores, 2026-12-04, shared with
other jobs at a load of ~15-20, so absolute times are noisy) it gave 0.263 CPU s per
iteration at 64 px and 0.48 at 96 px. The sweep's 21 runs x 2,500 iterations at 64 px are
then 21 x 2,500 x 0.263 / 2 cores = 1.9 h of training, plus one pass over the 10,000 test
images per run (~15-30 s each) and the page itself (minutes). The table "What was run" gives
the time the runs behind this page really took (two at a time on two cores: about half the
sum is the sweep's wall time). A fourth rate (15%) would add a third; the three rates span
the 50x range of the paper's claims. At 96 px the same grid needs ~3 h; 64 px keeps the
iterations (convergence matters more for these claims than resolution, and the 28 px source
holds no detail that 96 px would reveal), and matches the validation suite's `cpu` runs.

**Sharing runs with the validation suite.** Run directories are named by a hash of their
configuration, so a run of another sweep with the same settings is found and skipped when
both write to one folder. The validation suite's `cpu` full runs (Lite0, Fashion-MNIST at 1%,
5% and 20%, `demo` preset, 64 px, seeds 0-2) differ from this sweep only in their length
(600 iterations, lr x0.1 after 100) and rates: with `iterations = 2500`, `lr_step = 1700`
and the rates here, their L2 and L2+BSS cells would be these very runs."""


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.3e}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def markdown_table(df: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A pipe table of ``df`` (floats to 4 significant digits, NaN as a dash, ``|`` escaped)."""
    cols = list(columns) if columns is not None else list(df.columns)

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(_fmt(c).replace("|", "\\|") for c in cells) + " |"

    lines = [line(cols), "|" + "---|" * len(cols)]
    lines += [line(row) for row in df[cols].itertuples(index=False)]
    return "\n".join(lines)


def _numbers_table(numbers: Mapping[str, Any]) -> str:
    return markdown_table(pd.DataFrame({"number": list(numbers), "value": list(numbers.values())}))


def _subset(spectra: FeatureSpectra, labels: Mapping[str, str]) -> FeatureSpectra:
    """The models of ``labels`` (run id -> label) only, relabelled, in that order."""

    def pick(df: pd.DataFrame) -> pd.DataFrame:
        if df.empty or "model" not in df:
            return df
        out = df[df["model"].isin(list(labels))].copy()
        out["model"] = out["model"].map(labels)
        order = {lab: i for i, lab in enumerate(labels.values())}
        return out.sort_values("model", key=lambda s: s.map(order), kind="stable").reset_index(
            drop=True
        )

    return dataclasses.replace(
        spectra,
        summary=pick(spectra.summary),
        spectrum=pick(spectra.spectrum),
        batches=pick(spectra.batches),
        dataset=pick(spectra.dataset),
    )


def _spectra_for(
    rep: Reproduction, run_ids: Sequence[str]
) -> tuple[FeatureSpectra | None, pd.DataFrame]:
    """The spectra part holding ``run_ids`` and their run rows (the lowest seed of each cell)."""
    runs = rep.runs[rep.runs["run_id"].isin(list(run_ids))]
    if runs.empty:
        return None, runs
    runs = runs[runs["seed"] == runs["seed"].min()].sort_values(["rate_percent", "method"])
    for part in rep.spectra.values():
        if set(runs["run_id"]) <= set(part.models):
            return part, runs
    return None, runs


def _figures(rep: Reproduction, assets: Path, root: Path | None) -> dict[str, list[str]]:
    """Draw every figure that has its runs; ``{figure: [file names]}``."""
    from ..plotting import plot_batch_spectra, plot_corresponding_angles
    from ..plotting._base import save_figure
    from ..plotting.runs import plot_bss_k_sweep, plot_spectra_with_without_bss, plot_tsvd_sweep

    files: dict[str, list[str]] = {f: [] for f in FIGURES}
    if rep.weights:
        result = next(iter(rep.weights.values()))
        save_figure(plot_corresponding_angles(result, window=True), assets / "fig1b.png")
        files["1b"].append("fig1b.png")
    f1 = rep.finding("1c")
    part, runs = _spectra_for(rep, f1.runs)
    if part is not None:
        sub = _subset(part, {r.run_id: f"L2 @ {r.rate}" for r in runs.itertuples()})
        save_figure(plot_batch_spectra(sub, normalise=True), assets / "fig1c.png")
        save_figure(plot_batch_spectra(sub, normalise=True, half=True), assets / "fig1d.png")
        files["1c"].append("fig1c.png")
        files["1d"].append("fig1d.png")
    part, runs = _spectra_for(rep, rep.finding("3b").runs)
    if part is not None:
        sub = _subset(part, {r.run_id: f"{r.method} @ {r.rate}" for r in runs.itertuples()})
        save_figure(plot_spectra_with_without_bss(sub), assets / "fig3bc.png")
        files["3b"].append("fig3bc.png")
        files["3c"].append("fig3bc.png")
    if root is not None and (rep.finding("3a").runs or rep.finding("3d").runs):
        from ..training.aggregate import sweep_table

        table = sweep_table(root)
        dataset = rep.meta.get("figure3_data")
        if rep.finding("3a").runs:
            save_figure(plot_tsvd_sweep(table, dataset=dataset), assets / "fig3a.png")
            files["3a"].append("fig3a.png")
        if rep.finding("3d").runs:
            save_figure(plot_bss_k_sweep(table, dataset=dataset), assets / "fig3d.png")
            files["3d"].append("fig3d.png")
    return files


def _what_was_run(rep: Reproduction) -> str:
    s = rep.meta.get("settings") or {}
    if not s:
        return "No finished runs were found in `{}`: every figure is *not yet run*.".format(
            rep.meta.get("runs_dir")
        )
    rows = [
        ("runs", rep.meta.get("n_runs")),
        ("models", s.get("models")),
        ("datasets", s.get("datasets")),
        ("methods", s.get("methods")),
        ("sampling rates", s.get("rates")),
        ("seeds", s.get("seeds")),
        ("iterations", s.get("iterations")),
        ("image size (px)", s.get("image_sizes")),
        ("batch size", s.get("batch_sizes")),
        ("training time, summed over runs (h, wall clock of each run)", s.get("train_hours")),
        ("test batches per checkpoint (spectra)", rep.meta.get("max_batches")),
    ]
    table = markdown_table(pd.DataFrame(rows, columns=["", "value"]))
    loss = _final_losses(rep)
    return table + ("\n\n" + loss if loss else "")


def _final_losses(rep: Reproduction) -> str:
    """Training loss over the last tenth of each run against the tenth before (convergence)."""
    from ..training.rundir import RunDir

    rows = []
    for r in rep.runs.itertuples():
        recs = [x for x in RunDir(r.path).read_metrics() if "loss_task" in x]
        if len(recs) < 4:
            continue
        n = max(1, len(recs) // 10)
        last = sum(float(x["loss_task"]) for x in recs[-n:]) / n
        before = sum(float(x["loss_task"]) for x in recs[-2 * n : -n]) / n
        k, rr = int(r.k or 0), int(r.r or 0)
        label = str(r.method) + (f" (k = {k})" if k > 1 else "") + (f" (r = {rr})" if rr else "")
        rows.append(
            {
                "method": label,
                "rate": r.rate,
                "rate_percent": r.rate_percent,
                "last": last,
                "before": before,
                "error": r.error,
            }
        )
    if not rows:
        return ""
    df = (
        pd.DataFrame(rows)
        .groupby(["method", "rate", "rate_percent"], sort=False)
        .agg(
            n=("last", "size"),
            loss_last_tenth=("last", "mean"),
            loss_tenth_before=("before", "mean"),
            test_error=("error", "mean"),
        )
        .reset_index()
        .sort_values(["method", "rate_percent"])
    )
    return (
        "Training loss (the cross-entropy term, mean over the logged lines) in the last tenth of the "
        "run and the tenth before it, and the test error (%), means over seeds:\n\n"
        + markdown_table(
            df, ["method", "rate", "n", "loss_last_tenth", "loss_tenth_before", "test_error"]
        )
    )


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _stability_reading(f: Any) -> str:
    """Figure 1(b) in words: does the higher layers' decay survive the stability correction?"""
    n = f.numbers
    hi, lo = _num(n.get("gap_higher_index")), _num(n.get("gap_lower_index"))
    contrast_w = _num(n.get("contrast_window"))
    shares = (
        f.table["stable_share"].dropna() if "stable_share" in f.table else pd.Series(dtype=float)
    )
    text = (
        f"**Reading.** In the index view the leading 10% of the higher layers' singular vectors "
        f"are {hi:.3f} more aligned than the rest, against {lo:.3f} in the lower layers "
        f"(contrast {hi - lo:.3f}; the rule asks for 0.1)."
    )
    if math.isnan(_num(n.get("contrast_stable"))):
        med = float(shares.median()) if len(shares) else math.nan
        text += (
            " The stability correction cannot be applied: a median of "
            f"{100 * med:.0f}% of a layer's indices have a Wedin bound below 1, too few to form "
            "both a leading and a remaining group, so these index-matched angles are not "
            "individually stable and the decay is not shown to survive the correction."
        )
    else:
        text += f" The stable view's contrast is {_num(n.get('contrast_stable')):.3f}."
    if not math.isnan(contrast_w):
        text += (
            f" The window view, which tolerates reordering among near-equal singular values, "
            f"gives a contrast of {contrast_w:.3f}."
        )
    return text


def render_reproduction_markdown(
    rep: Reproduction,
    files: Mapping[str, Sequence[str]],
    *,
    assets: str,
    command: str,
    reduced: str | None = None,
) -> str:
    """The page's Markdown (figures referenced under ``assets``)."""
    out = ["# Reproducing the paper's findings", ""]
    out += [
        f"Generated by `{command}` from the run directories in `{rep.meta.get('runs_dir')}`; the numbers "
        f"are also in [`{assets}/numbers.json`]({assets}/numbers.json). Do not edit this page by hand: "
        "rerun the command.",
        "",
    ]
    if reduced:
        out += [
            '!!! warning "A reduced run"',
            f"    {reduced} Every verdict below is **provisional**.",
            "",
        ]
    out += ["## What was run", "", _what_was_run(rep), ""]
    out += ["## Verdicts", "", "| figure | the paper's claim | verdict |", "|---|---|---|"]
    for f in rep.findings:
        v = f.verdict + (
            " (provisional)" if (f.provisional or reduced) and f.verdict != "not yet run" else ""
        )
        out.append(f"| [{f.figure}](#fig{f.figure}) | {f.claim} | **{v}** |")
    out.append("")
    for f in rep.findings:
        out += [
            f'<a id="fig{f.figure}"></a>',
            "",
            f"## {_TITLES[f.figure]}",
            "",
            f"**The paper.** {f.claim}",
            "",
        ]
        for name in files.get(f.figure, []):
            out += [f"![Figure {f.figure}]({assets}/{name})", ""]
        if f.verdict == "not yet run":
            out += [
                "**Not yet run**: the runs this figure needs are not in the folder. "
                + ("" if f.figure in ("3a", "3d") else f"At CPU scale: `{RUN_COMMANDS['cpu']}`; ")
                + f"at paper scale: `{RUN_COMMANDS['paper']}`; then regenerate this page.",
                "",
            ]
            out += [f"**Rule.** {f.rule}", ""]
            continue
        out += ["**The numbers.**", "", _numbers_table(f.numbers), ""]
        if not f.table.empty:
            table = f.table.drop(columns=[c for c in ("ratios_smallest4",) if c in f.table])
            what = "Per layer (means over seeds):" if f.figure == "1b" else "Per cell:"
            out += [what, "", markdown_table(table), ""]
        out += [f"**Rule.** {f.rule}", ""]
        note = (
            " (provisional: fewer than three seeds, or a reduced run)"
            if f.provisional or reduced
            else ""
        )
        out += [f"**Verdict: {f.verdict}**{note}.", ""]
        if f.figure == "1b":
            out += [_stability_reading(f), ""]
    out += [
        "## Honest limits",
        "",
        "Differences from the paper that could change a verdict:",
        "",
        _LIMITS,
    ]
    out += [
        "## How to run it",
        "",
        "CPU scale (the `reproduce` sweep, 21 runs; resumable: rerun the same command after an interruption):",
        "",
        "```",
        RUN_COMMANDS["cpu"],
        "spectral-probe reproduce-page runs/reproduce --out docs/",
        "```",
        "",
        _COST,
        "",
        "Paper scale (the `reproduce-paper` sweep: ResNet-50 at 224 px on MIT Indoor 67 and Stanford Dogs, "
        "with the TSVD and BSS-k axes of Figure 3):",
        "",
        "```",
        RUN_COMMANDS["paper"],
        "spectral-probe reproduce-page runs/reproduce-paper --out docs/",
        "```",
        "",
    ]
    return "\n".join(out)


def write_reproduction_page(
    rep: Reproduction,
    out: str | Path,
    *,
    page: str = "reproduction.md",
    assets: str = "reproduction",
    command: str = "spectral-probe reproduce-page",
    reduced: str | None = None,
) -> dict[str, Path]:
    """Write ``OUT/page``, its figures and ``numbers.json`` under ``OUT/assets``.

    Returns:
        ``{"page": ..., "json": ..., "<figure file>": ...}``.
    """
    out = Path(out)
    folder = out / assets
    folder.mkdir(parents=True, exist_ok=True)
    root = Path(str(rep.meta.get("runs_dir"))) if rep.meta.get("runs_dir") else None
    files = _figures(rep, folder, root if root is not None and root.is_dir() else None)
    paths: dict[str, Path] = {"json": rep.to_json(folder / "numbers.json")}
    text = render_reproduction_markdown(rep, files, assets=assets, command=command, reduced=reduced)
    paths["page"] = atomic_write_text(out / page, text)
    for names in files.values():
        for name in names:
            paths[name] = folder / name
    return paths
