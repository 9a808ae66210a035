"""The report's figures, as PNG bytes with captions (every paper figure that applies)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..plotting import (
    new_axes,
    new_figure,
    plot_angle_heatmap,
    plot_batch_spectra,
    plot_corresponding_angles,
)
from ..training import plot_spectrum_over_time

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .build import Report

__all__ = ["ReportFigure", "report_figures", "plot_pilot_accuracy", "plot_rate_curve"]


@dataclass(frozen=True)
class ReportFigure:
    """One figure: file name, title, caption and the PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


def _png(fig: Figure, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def plot_pilot_accuracy(report: Report) -> Figure:
    """Validation accuracy per method: each seed (dots), the mean and its 95% CI (bar)."""
    rates = list(report.recommendations)
    fig = new_figure((5.0 * len(rates), 0.55 * len(report.settings.methods) + 1.6))
    axes = fig.subplots(1, len(rates), squeeze=False)[0]
    for ax, rate in zip(axes, rates):
        rec = report.recommendations[rate]
        table = report.pilots.table[report.pilots.table["rate"] == rate]
        order = list(rec.ranking["method"])[::-1]
        for y, method in enumerate(order):
            row = rec.ranking.set_index("method").loc[method]
            color = "tab:green" if method == rec.method else "tab:blue"
            ax.errorbar(
                100 * row["mean"],
                y,
                xerr=[
                    [100 * (row["mean"] - row["ci_low"])],
                    [100 * (row["ci_high"] - row["mean"])],
                ],
                fmt="o",
                color=color,
                capsize=4,
                ms=7,
            )
            seeds = table[table["method"] == method]["val_accuracy"].to_numpy(dtype=float)
            ax.scatter(100 * seeds, np.full(len(seeds), y + 0.18), s=12, color="0.4", zorder=3)
        ax.set_yticks(range(len(order)), order)
        ax.set_xlabel("pilot validation accuracy (%)")
        ax.set_title(f"rate {rate}: recommended {rec.method} ({rec.confidence})", fontsize=9)
        ax.grid(alpha=0.3, axis="x")
    return fig


def plot_rate_curve(report: Report) -> Figure:
    """Validation error against the sampling rate per method (paper Figure 1a)."""
    fig, ax = new_axes(None, (6.0, 4.0))
    rates = list(report.recommendations)
    x = np.arange(len(rates))
    for method in report.settings.methods:
        means, lows, highs = [], [], []
        for rate in rates:
            row = report.recommendations[rate].ranking.set_index("method").loc[method]
            means.append(100 * (1 - row["mean"]))
            lows.append(100 * (row["ci_high"] - row["mean"]))
            highs.append(100 * (row["mean"] - row["ci_low"]))
        ax.errorbar(x, means, yerr=[lows, highs], marker="o", capsize=3, label=method)
    ax.set_xticks(x, rates)
    ax.set_xlabel("sampling rate per class")
    ax.set_ylabel("pilot validation error (%)")
    ax.set_title("error against sampling rate (paper Figure 1a)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _over_time(report: Report) -> Figure:
    rate = report.settings.rate
    methods = report.settings.methods
    fig = new_figure((4.2 * len(methods), 3.4))
    axes = fig.subplots(1, len(methods), squeeze=False)[0]
    for ax, method in zip(axes, methods):
        plot_spectrum_over_time(
            report.pilots.run(method, rate, report.settings.seeds[0]), smallest=6, ax=ax
        )
        ax.set_title(method, fontsize=9)
    return fig


def report_figures(report: Report) -> list[ReportFigure]:
    """Every figure of the report, in reading order."""
    s = report.settings
    ev = report.evidence
    figs = [
        ReportFigure(
            "pilot_accuracy.png",
            "Pilot validation accuracy",
            f"Each method fine-tuned {len(s.seeds)} time(s) (grey dots: seeds); marker and bar: mean and 95% "
            "Student-t confidence interval over seeds, never narrower than the validation set's binomial noise (one seed: the seed-sd floor added). Green: the recommendation.",
            _png(plot_pilot_accuracy(report)),
        )
    ]
    if len(report.recommendations) > 1:
        figs.append(
            ReportFigure(
                "error_vs_rate.png",
                "Error against sampling rate",
                "Pilot validation error of every method at each per-class sampling rate (the paper's Figure 1a).",
                _png(plot_rate_curve(report)),
            )
        )
    figs.append(
        ReportFigure(
            "feature_spectra.png",
            "Singular values of batch feature matrices",
            f"Mean over batches (band: 95% CI) of the singular values of {int(ev.spectra.summary['batch_size'].iloc[0])}-row "
            f"feature matrices on the {ev.split} split, for the pre-trained model and each pilot (paper Figures 1c and 3b).",
            _png(plot_batch_spectra(ev.spectra)),
        )
    )
    figs.append(
        ReportFigure(
            "feature_spectra_half.png",
            "The smaller half of the singular values",
            "The same spectra, smaller half only: the components BSS shrinks (paper Figures 1d and 3c).",
            _png(plot_batch_spectra(ev.spectra, half=True)),
        )
    )
    figs.append(
        ReportFigure(
            "spectrum_over_time.png",
            "Smallest singular values during training",
            "The smallest singular values of the training batches' feature matrices as each pilot (seed "
            f"{s.seeds[0]}, rate {s.rate}) trains, logged about 20 times per run; BSS penalises the smallest ones.",
            _png(_over_time(report)),
        )
    )
    if ev.weights is not None:
        figs.append(
            ReportFigure(
                "corresponding_angles.png",
                "Corresponding angles: pre-trained vs pilot",
                "|cos θ_i| between the i-th singular vectors of the pre-trained and the fine-tuned weights for the "
                "first convolution, the first block and the last block (paper Figure 1b); dashed: spectral-window "
                "alignment; faint dots: indices Wedin's bound cannot resolve.",
                _png(plot_corresponding_angles(ev.weights, window=True)),
            )
        )
        figs.append(
            ReportFigure(
                "angle_heatmap.png",
                "Alignment across the network",
                "Spectral-window alignment of every layer (rows, input to output) against the normalised index.",
                _png(plot_angle_heatmap(ev.weights, value="cos_window")),
            )
        )
        if not ev.weights.esd.empty:
            from ..plotting import plot_alpha_profile

            figs.append(
                ReportFigure(
                    "alpha_profile.png",
                    "α profile: pre-trained vs pilot",
                    "Power-law exponent α of each layer's eigenvalue tail (WeightWatcher's metric, weights only; "
                    "band: 2 ≤ α ≤ 6; docs/esd.md), for the pre-trained model (a) and the pilot (b). Shown, not "
                    "used by the rule.",
                    _png(plot_alpha_profile(ev.weights)),
                )
            )
    if ev.similarity is not None and not ev.similarity.matched.empty:
        from ..plotting import plot_similarity_by_depth

        figs.append(
            ReportFigure(
                "cka_by_depth.png",
                "Representation similarity by depth: pre-trained vs pilot",
                "Linear CKA (and its debiased form) between the pre-trained model's and the pilot's "
                "features at each stage, on the same training inputs: 1 = the same representation up "
                "to rotation and scale (docs/similarity.md). The representation-space twin of the "
                "corresponding angles. Shown, not used by the rule.",
                _png(plot_similarity_by_depth(ev.similarity)),
            )
        )
    for i, (path, res) in enumerate(ev.finetuned.items()):
        figs.append(
            ReportFigure(
                f"finetuned_{i}_angles.png",
                f"Corresponding angles: pre-trained vs {path}",
                "Your fine-tuned checkpoint against the pre-trained model.",
                _png(plot_corresponding_angles(res, window=True)),
            )
        )
    return figs
