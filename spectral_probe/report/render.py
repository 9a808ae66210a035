"""Render a :class:`~spectral_probe.report.Report` as HTML (self-contained), Markdown and JSON."""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import atomic_write_bytes, atomic_write_text, write_json
from .build import Report, pilot_frame
from .figures import ReportFigure, report_figures

__all__ = ["render_report", "caveats", "what_changed_rows"]

_TEMPLATES = Path(__file__).with_name("templates")


def _env():  # type: ignore[no-untyped-def]
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )


def caveats(report: Report) -> list[str]:
    """What the reader should keep in mind, in plain words."""
    s = report.settings
    run = report.pilots.runs[0].config
    out = list(s.scaled_down)
    out.append(
        f"Pilots are short ({run.iterations} iterations, batch {run.batch_size}, {run.image_size} px): they rank "
        "methods early in training, which usually but not always predicts the ranking of full runs."
    )
    if len(s.seeds) < 3:
        out.append(
            f"{len(s.seeds)} seed(s) per method: the confidence intervals are wide and the confidence is medium at "
            "most; add seeds (--seed) to firm them up."
        )
    rec = report.headline
    if rec.power:
        lead, power = max(rec.power.items(), key=lambda kv: float(kv[0]))
        if power < 0.8:
            out.append(
                f"The pilots are underpowered: even a true {lead}-point lead is detected with probability "
                f'{100 * power:.0f}% (the power line of the recommendation). "No detectable difference" is '
                "weak evidence of equality: read the intervals, or add seeds (--seed)."
            )
    n_val = report.pilots.table["n_val"].dropna()
    if len(n_val):
        out.append(
            f"Validation accuracy is measured on {int(n_val.min())} images carved from the training split; "
            "nothing was selected on the test split."
        )
    out.append(
        "The spectral signals (tail energy, top-layer alignment) are shown for analysis and do not decide: no "
        "validation result (docs/validation.md) shows that the former tie-break thresholds predict when BSS "
        f"or L2-SP helps. Without a detectable difference the report uses the default, {s.default_method} "
        f"(one-sided level {s.alpha:g}, best-of-k corrected; the spread of a paired difference is floored at the "
        f"validation split's binomial noise, plus a seed-sd floor of {100 * s.seed_sd_floor:g} point(s) per method "
        "with one seed)."
    )
    if report.evidence.split == "test":
        out.append("Feature spectra are measured on the test split, for analysis only.")
    ranking = report.evidence.transferability
    if ranking is not None:
        for spec in ranking.meta.get("models", {}).values():
            n, d = spec.get("n_samples"), spec.get("feature_dim")
            if n is not None and d is not None and n <= d:
                out.append(
                    f"Transferability scores come from {n} inputs against {d} feature dimensions: with "
                    "N <= D the H-score and SFDA sit at their ceilings and do not discriminate "
                    "(docs/transferability.md); rank models with spectral-probe rank-models and more samples."
                )
                break
    return out


def _transferability_rows(report: Report) -> list[dict[str, Any]]:
    """One row per transferability score of the report's model (empty when not computed)."""
    from ..transferability import SCORES

    ranking = report.evidence.transferability
    if ranking is None:
        return []
    rows = []
    for row in ranking.scores[ranking.scores["model"] == "pre-trained"].itertuples(index=False):
        skipped = row.skipped if isinstance(row.skipped, str) else None
        value = f"skipped ({skipped})" if skipped else f"{row.value:.4g}"
        rows.append(
            {
                "score": row.score,
                "value": value,
                "paper": SCORES[row.score].paper,
                "measures": SCORES[row.score].measures,
            }
        )
    return rows


def _model_ranking_rows(report: Report) -> list[dict[str, Any]]:
    """With ``--compare-models``: one row per model, its rank by each score and the consensus."""
    ranking = report.evidence.transferability
    if ranking is None or len(ranking.table) < 2:
        return []
    rows = []
    for rec in ranking.table.sort_values("consensus_rank").to_dict(orient="records"):
        ranks = {s: rec.get(f"{s}_rank") for s in ranking.score_names}
        rows.append(
            {
                "model": rec["model"],
                "consensus": f"{rec['consensus_rank']:.2f}",
                "ranks": [f"{r:g}" if r == r and r is not None else "–" for r in ranks.values()],
            }
        )
    return rows


def _fmt(value: Any, spec: str) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "–"
    return format(number, spec) if math.isfinite(number) else "–"


def what_changed_rows(report: Report) -> list[dict[str, Any]]:
    """One row per candidate of the "what changed" section, numbers as shown (empty: none)."""
    wc = report.evidence.what_changed
    if wc is None:
        return []
    layers = wc.layers
    chance = (
        layers.groupby("fine_tune")["chance_energy"].mean()
        if "chance_energy" in layers
        else pd.Series(dtype=float)
    )
    return [
        {
            "method": row["method"],
            "intruders": _fmt(row["intruders"], ".0f"),
            "intruders_right": _fmt(row["intruders_right"], ".0f"),
            "layers": f"{_fmt(row['layers_with_intruders'], '.0f')} of {row['layers']}",
            "w_rel_change": _fmt(row["w_rel_change"], ".2e"),
            "effective_rank": _fmt(row["update_effective_rank"], ".1f"),
            "stable_rank": _fmt(row["update_stable_rank"], ".2f"),
            "top_energy": _fmt(row["top_energy"], ".3f"),
            "bottom_energy": _fmt(row["bottom_energy"], ".3f"),
            "chance_energy": _fmt(chance.get(row["fine_tune"]), ".3f"),
        }
        for row in wc.fine_tunes.to_dict(orient="records")
    ]


def _context(report: Report, figures: list[ReportFigure], embed: bool) -> dict[str, Any]:
    from .. import __version__

    rec = report.headline
    rankings = {
        rate: r.ranking.assign(
            mean_pct=100 * r.ranking["mean"],
            std_pct=100 * r.ranking["std"],
            ci_low_pct=100 * r.ranking["ci_low"],
            ci_high_pct=100 * r.ranking["ci_high"],
            diff_pct=100 * r.ranking["diff"],
            diff_low_pct=100 * r.ranking["diff_low"],
            diff_high_pct=100 * r.ranking["diff_high"],
            p_best_pct=100 * r.ranking["p_best"],
        ).to_dict(orient="records")
        for rate, r in report.recommendations.items()
    }
    ev = report.evidence
    top_rows = []
    if ev.weights is not None:
        top_rows = ev.weights.layers[ev.weights.layers["layer"].isin(ev.top_layers)].to_dict(
            orient="records"
        )
    return {
        "r": report,
        "s": report.settings,
        "rec": rec,
        "recommendations": report.recommendations,
        "rankings": rankings,
        "summary": report.summary(),
        "pilots": pilot_frame(report).to_dict(orient="records"),
        "figures": [
            {
                "name": f.name,
                "title": f.title,
                "caption": f.caption,
                "src": ("data:image/png;base64," + base64.b64encode(f.png).decode())
                if embed
                else f"figures/{f.name}",
            }
            for f in figures
        ],
        "ev": ev,
        "signals": report.signals,
        "top_rows": top_rows,
        "transferability": _transferability_rows(report),
        "what_changed": what_changed_rows(report),
        "what_changed_meta": report.evidence.what_changed.runs[0].meta
        if report.evidence.what_changed is not None
        else {},
        "model_ranking": _model_ranking_rows(report),
        "ranking_scores": report.evidence.transferability.score_names
        if report.evidence.transferability
        else [],
        "transferability_n": report.evidence.transferability.meta["n_samples"]
        if report.evidence.transferability
        else 0,
        "caveats": caveats(report),
        "commands": report.commands,
        "version": __version__,
    }


def render_report(report: Report, directory: str | Path) -> dict[str, Path]:
    """Write ``index.html`` (figures embedded), ``report.md`` (+ ``figures/``) and ``report.json``."""
    directory = Path(directory)
    figures = report_figures(report)
    env = _env()
    paths = {
        "html": atomic_write_text(
            directory / "index.html",
            env.get_template("report.html.j2").render(**_context(report, figures, True)),
        ),
        "markdown": atomic_write_text(
            directory / "report.md",
            env.get_template("report.md.j2").render(**_context(report, figures, False)),
        ),
        "json": write_json(directory / "report.json", report.to_dict()),
    }
    for fig in figures:
        atomic_write_bytes(directory / "figures" / fig.name, fig.png)
    return paths
