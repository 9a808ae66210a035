"""Figures of fine-tuning runs: the paper's Figures 1(a), 3(a), 3(b,c) and 3(d), and more.

* :func:`plot_error_vs_rate`: error rate against sampling rate, one line per method (1a);
* :func:`plot_tsvd_sweep`: the same for TSVD with r = 1, 2, 4, 8 (3a);
* :func:`plot_bss_k_sweep`: the same for BSS with k = 1, 2, 4, 8 (3d);
* :func:`plot_spectra_with_without_bss`: feature singular values of runs with (dotted) and
  without (solid) BSS, all and the smaller half (3b, 3c);
* :func:`plot_spectrum_over_time`: the smallest singular values logged during one run;
* :func:`run_figures`: every one of them that a folder of runs supports, named as
  ``spectral-probe plot-runs`` writes them.

They take results (:class:`~spectral_probe.training.SweepTable`,
:class:`~spectral_probe.analysis.FeatureSpectra`, :class:`~spectral_probe.training.RunResult`)
and never recompute them. They live beside the results they draw, so they read training's
column names (``rate_percent``, ``hp.bss.k``) and run labels (:data:`~.spectra.LABEL_SEP`)
from the code that writes them; the drawing plumbing comes from
:mod:`spectral_probe.plotting`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..plotting import new_axes, palette, panel_axes, small_half_start
from .rundir import RunResult, load_run
from .spectra import LABEL_SEP, runs_feature_spectra

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..analysis import FeatureSpectra
    from .aggregate import SweepTable

__all__ = [
    "plot_error_vs_rate",
    "plot_tsvd_sweep",
    "plot_bss_k_sweep",
    "plot_spectra_with_without_bss",
    "plot_spectrum_over_time",
    "run_figures",
]


def _cells(table: SweepTable, dataset: str | None) -> Any:
    cells = table.cells
    if cells.empty:
        raise ValueError("expected finished runs in the table, found none")
    dataset = dataset or str(cells["dataset"].iloc[0])
    out = cells[cells["dataset"] == dataset]
    if out.empty:
        raise ValueError(
            f"expected runs of dataset {dataset!r}, found {sorted(cells['dataset'].unique())}"
        )
    return out, dataset


def _rate_axis(ax: Axes, cells: Any) -> None:
    rates = sorted({r for r in cells["rate_percent"] if r == r})
    ax.set_xticks(rates, [f"{r:g}%" for r in rates])
    ax.set_xlabel("sampling rate")
    ax.set_ylabel("error rate")
    ax.grid(alpha=0.3)


def _lines(ax: Axes, cells: Any, hue: str, label: Any) -> None:
    for value, group in cells.groupby(hue, sort=True):
        g = group.dropna(subset=["rate_percent"]).sort_values("rate_percent")
        if g.empty:
            continue
        err = 1 - g["mean"].to_numpy() / 100
        std = np.nan_to_num(g["std"].to_numpy() / 100)
        ax.errorbar(
            g["rate_percent"],
            err,
            yerr=std,
            marker="o",
            ms=4,
            capsize=3,
            lw=1.5,
            label=label(value),
        )


def plot_error_vs_rate(
    table: SweepTable, *, dataset: str | None = None, hue: str = "method", ax: Axes | None = None
) -> Figure:
    """Error rate (1 - top-1) against the sampling rate, one line per ``hue`` (Figure 1a).

    Error bars are the standard deviation over seeds.

    Args:
        table: from :func:`~spectral_probe.training.sweep_table`.
        dataset: the dataset to draw (default: the first).
        hue: the cell column that makes the lines (``method``, ``hp.bss.k``...).
        ax: axes to draw on.
    """
    cells, dataset = _cells(table, dataset)
    fig, ax = new_axes(ax)
    _lines(ax, cells, hue, lambda v: str(v).upper() if hue == "method" else f"{hue} = {v}")
    _rate_axis(ax, cells)
    ax.set_title(f"{dataset}: error rate vs sampling rate", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def _sweep(
    table: SweepTable, term: str, key: str, dataset: str | None, ax: Axes | None, figure: str
) -> Figure:
    cells, dataset = _cells(table, dataset)
    column = f"hp.{term}.{key}"
    has = cells["method"].str.split("+").map(lambda parts: term in parts)
    swept = cells[has & cells[column].notna()] if column in cells else cells.iloc[0:0]
    if swept.empty:
        raise ValueError(f"expected runs with {term} and a varying {term}.{key}, found none")
    base = swept["method"].iloc[0].replace(f"+{term}", "").replace(f"{term}+", "")
    baseline = cells[cells["method"] == base]
    fig, ax = new_axes(ax)
    if not baseline.empty:
        _lines(ax, baseline.assign(_b=0), "_b", lambda v: f"{base.upper()} ({key} = 0)")
    _lines(ax, swept, column, lambda v: f"{key} = {int(v) if float(v).is_integer() else v}")
    _rate_axis(ax, cells)
    ax.set_title(f"{dataset}: {figure}", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_tsvd_sweep(
    table: SweepTable, *, dataset: str | None = None, ax: Axes | None = None
) -> Figure:
    """Error rate against sampling rate for TSVD with each r (Figure 3a); the method without
    TSVD, when present, is drawn as r = 0."""
    return _sweep(table, "tsvd", "r", dataset, ax, "TSVD, removing the r smallest components")


def plot_bss_k_sweep(
    table: SweepTable, *, dataset: str | None = None, ax: Axes | None = None
) -> Figure:
    """Error rate against sampling rate for BSS with each k (Figure 3d); the method without
    BSS, when present, is drawn as k = 0."""
    return _sweep(table, "bss", "k", dataset, ax, "BSS, penalising the k smallest singular values")


def plot_spectra_with_without_bss(
    result: FeatureSpectra,
    *,
    half_only: bool = False,
    ax: Axes | Sequence[Axes] | None = None,
) -> Figure:
    """Feature singular values of fine-tuned models, without BSS (solid) and with (dotted).

    Models are labelled ``"METHOD @ RATE"`` (as
    :func:`~spectral_probe.training.runs_feature_spectra` does); one colour per rate. The
    left panel holds all ``b`` values (Figure 3b), the right one the smaller half (3c).

    Args:
        result: from :func:`~spectral_probe.training.runs_feature_spectra`.
        half_only: only the panel of the smaller half.
        ax: the axes to draw on, one per panel (two, or one with ``half_only``).
    """
    entries = []
    for model in result.models:
        method, _, rate = model.partition(LABEL_SEP)
        entries.append((model, method, rate, method.split("+")[-1] == "bss"))
    rates = sorted(
        {e[2] for e in entries}, key=lambda r: (float(r.rstrip("%")) if r.endswith("%") else 1e9, r)
    )
    colors = dict(zip(rates, palette(len(rates))))
    panels = [True] if half_only else [False, True]
    fig, axes, _ = panel_axes(ax, len(panels), ncols=len(panels), panel=(5.2, 4.0))
    for axis, half in zip(axes, panels):
        for model, method, rate, bss in entries:
            rows = result.curve(model, quantity="sigma")
            if half:
                rows = rows[rows["index"] >= small_half_start(len(rows))]
            axis.plot(
                rows["index"],
                rows["mean"],
                color=colors[rate],
                ls=":" if bss else "-",
                lw=1.6,
                label=f"{method.upper()} {rate}",
            )
        axis.set_xlabel("index i")
        axis.set_ylabel(r"singular value $\sigma_i$")
        axis.set_title(
            "smaller half of the singular values" if half else "singular values", fontsize=9
        )
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, ncol=2)
    return fig


def plot_spectrum_over_time(run: RunResult, *, smallest: int = 8, ax: Axes | None = None) -> Figure:
    """The ``smallest`` singular values of the batch feature matrix logged during training,
    against the iteration (log scale): how BSS shrinks the tail as training goes on."""
    spectra = run.spectra
    if spectra.empty:
        raise ValueError(f"expected singular values in {run.run_dir}/metrics.jsonl, found none")
    fig, ax = new_axes(ax)
    b = int(spectra["index"].max()) + 1
    keep = list(range(max(b - smallest, 0), b))
    for i, color in zip(keep, palette(len(keep))):
        rows = spectra[spectra["index"] == i]
        ax.plot(rows["iteration"], rows["sigma"], color=color, lw=1.2, label=f"σ_{i + 1}")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("singular value")
    ax.set_title(
        f"{run.config.method} {run.config.rate}: smallest singular values during training",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return fig


def run_figures(
    table: SweepTable,
    *,
    spectra: bool = True,
    max_batches: int = 10,
    device: str = "auto",
    over_time: bool = False,
) -> Iterator[tuple[str, Figure]]:
    """``(file name, figure)`` for every figure the runs of ``table`` support, one at a time.

    Per dataset ``error_vs_rate_<dataset>.png`` (1a), and ``tsvd_r_<dataset>.png`` (3a) and
    ``bss_k_<dataset>.png`` (3d) where the runs vary ``tsvd.r`` or ``bss.k``; with ``spectra``,
    ``spectra_bss.png`` (3b,c: feature spectra of the checkpoints on the test split, at most
    ``max_batches`` batches per model, when the runs hold a method with and without BSS);
    with ``over_time``, ``spectrum_time_<run id>.png`` for each run that logged its spectrum.

    Raises:
        ValueError: the table holds no finished run.
    """
    if table.cells.empty:
        raise ValueError("expected finished runs in the table, found none")
    for dataset in table.cells["dataset"].unique():
        yield f"error_vs_rate_{dataset}.png", plot_error_vs_rate(table, dataset=dataset)
        if "hp.tsvd.r" in table.cells:
            yield f"tsvd_r_{dataset}.png", plot_tsvd_sweep(table, dataset=dataset)
        if "hp.bss.k" in table.cells:
            yield f"bss_k_{dataset}.png", plot_bss_k_sweep(table, dataset=dataset)
    if spectra:
        result = runs_feature_spectra(table.runs, max_batches=max_batches, device=device)
        if result is not None:
            yield "spectra_bss.png", plot_spectra_with_without_bss(result)
    if over_time:
        for path in table.runs["path"]:
            run = load_run(path)
            if not run.spectra.empty:
                yield f"spectrum_time_{run.run_id}.png", plot_spectrum_over_time(run)
