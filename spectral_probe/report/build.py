"""``build_report``: pilots, spectral evidence and the recommendation, gathered in one object."""

from __future__ import annotations

import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from .._results import records
from ..data import check_min_per_class, load_dataset, make_splits
from ..errors import DataError, SpectralProbeError
from ..models import load_model
from .evidence import Evidence, gather_evidence
from .pilot import PilotProgress, PilotRuns, pilot_configs, run_pilots
from .recommend import Recommendation, SpectralEvidence, recommend, score_pilots
from .settings import ReportSettings

__all__ = ["Report", "build_report", "check_pilot_data"]


@dataclass
class Report:
    """Everything a diagnostic report shows (rendered by :func:`~spectral_probe.report.render_report`).

    Attributes:
        settings: what was asked.
        pilots: the pilot runs.
        recommendations: the recommendation at each sampling rate (the last rate's is the headline).
        evidence: feature spectra and weight angles.
        signals: the spectral signals shown beside the recommendation (they do not decide).
        commands: shell commands that reproduce every number.
        seconds: wall time of each stage.
        created: ISO timestamp.
    """

    settings: ReportSettings
    pilots: PilotRuns
    recommendations: dict[str, Recommendation]
    evidence: Evidence
    signals: SpectralEvidence
    commands: list[str]
    seconds: dict[str, float] = field(default_factory=dict)
    created: str = ""

    @property
    def headline(self) -> Recommendation:
        """The recommendation at the rate of interest (the last one)."""
        return self.recommendations[self.settings.rate]

    def summary(self) -> str:
        """A short plain-language paragraph for the top of the report."""
        rec = self.headline
        row = rec.ranking.set_index("method").loc[rec.method]
        s = self.settings
        iters = self.pilots.runs[0].config.iterations
        best = rec.ranking.iloc[0]["method"]
        parts = [
            f"For {s.model} fine-tuned on {s.data}, use **{rec.method}** (confidence: {rec.confidence}"
            + (
                f"; the pilots could not tell it apart from {best}, which scored higher: "
                f"{best} − {rec.method} in [{100 * row['diff_low']:+.2f}, {100 * row['diff_high']:+.2f}] points"
                if best != rec.method
                else ""
            )
            + ").",
            f"In {len(s.seeds)}-seed pilot fine-tunes of {iters} iterations it reached "
            f"{100 * row['mean']:.1f}% validation accuracy (95% CI {100 * row['ci_low']:.1f}–{100 * row['ci_high']:.1f}%).",
        ]
        if rec.power:
            parts.append(rec.power_text())
        others = rec.ranking[rec.ranking["method"] != rec.method]
        if not others.empty:
            parts.append(
                "The others: "
                + "; ".join(f"{m} {100 * v:.1f}%" for m, v in zip(others["method"], others["mean"]))
                + "."
            )
        ev = self.evidence
        parts.append(
            f"The pre-trained features of the target data hold {100 * ev.tail_energy:.1f}% of their energy in the "
            "smaller half of the batch spectrum"
            + (
                f"; fine-tuning with L2 kept the top layers' directions at a mean spectral-window alignment of "
                f"{ev.top_alignment:.2f}."
                if ev.top_alignment is not None
                else "."
            )
        )
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content (the report.json file)."""
        ev = self.evidence
        return {
            "format": "spectral-probe-report",
            "version": 1,
            "created": self.created,
            "settings": self.settings.to_dict(),
            "summary": self.summary(),
            "recommendation": _rec_dict(self.headline),
            "recommendations": {rate: _rec_dict(rec) for rate, rec in self.recommendations.items()},
            "pilots": self.pilots.table.to_dict(orient="records"),
            "evidence": {
                "split": ev.split,
                "tail_energy": ev.tail_energy,
                "top_layers": ev.top_layers,
                "top_alignment": ev.top_alignment,
                "top_cos": ev.top_cos,
                "decides": False,  # shown, never used by the rule (docs/validation.md)
                "feature_spectra": ev.spectra.summary.to_dict(orient="records"),
                "weights": ev.weights.layers.to_dict(orient="records")
                if ev.weights is not None
                else None,
                "finetuned": {
                    k: v.layers.to_dict(orient="records") for k, v in ev.finetuned.items()
                },
                "transferability": ev.transferability.to_dict()
                if ev.transferability is not None
                else None,
                "similarity": ev.similarity.to_dict() if ev.similarity is not None else None,
                "what_changed": {
                    "decides": False,  # shown, never used by the rule
                    "seed": self.settings.seeds[0],
                    "rate": self.settings.rate,
                    "intruder_k": ev.what_changed.runs[0].meta.get("intruder_k"),
                    "intruder_epsilon": ev.what_changed.runs[0].meta.get("intruder_epsilon"),
                    "candidates": records(ev.what_changed.fine_tunes),
                    "layers": records(ev.what_changed.layers),
                }
                if ev.what_changed is not None
                else None,
            },
            "commands": self.commands,
            "seconds": self.seconds,
        }


def _rec_dict(rec: Recommendation) -> dict[str, Any]:
    return {
        "method": rec.method,
        "confidence": rec.confidence,
        "z": rec.z if math.isfinite(rec.z) else None,
        "outcome": rec.outcome,
        "default": rec.default,
        "reasons": rec.reasons,
        "comparison_level": rec.level,  # one-sided level of each comparison: alpha/(k-1)
        "n_seeds": rec.n_seeds,
        "power": rec.power,  # detection probability of a true 1- and 2-point lead
        "power_sd": rec.power_sd,  # the per-seed noise of a difference it assumes
        "ranking": rec.ranking.to_dict(orient="records"),
    }


def check_pilot_data(settings: ReportSettings) -> None:
    """Fail early, with one line, when the data cannot hold the pilots' splits.

    Every class needs at least one validation example and two training examples at every
    pilot rate.
    """
    train = load_dataset(settings.data, "train")
    targets = list(train.targets)
    check_min_per_class(
        targets, 3, classes=train.classes, what="the pilot's train/validation split"
    )
    for rate in settings.rates:
        try:
            splits = make_splits(
                targets,
                rate=rate,
                val=settings.val,
                seed=settings.seeds[0],
                min_per_class=2,
                classes=train.classes,
            )
        except DataError as exc:
            raise DataError(
                f"dataset too small for the pilot splits at rate {rate}: {exc}"
            ) from None
        if len(splits.val) == 0:
            raise DataError(
                f"expected a non-empty validation split (--val {settings.val}), found none in {settings.data}"
            )


def _commands(settings: ReportSettings, pilots: PilotRuns, out: Path) -> list[str]:
    q = shlex.quote
    cmds = [
        " ".join(
            [
                "spectral-probe report",
                f"--model {q(settings.model)}",
                f"--data {q(settings.data)}",
                f"--out {q(str(out))}",
            ]
            + [f"--method {q(m)}" for m in settings.methods]
            + [f"--rate {q(r)}" for r in settings.rates]
            + [f"--seed {s}" for s in settings.seeds]
            + [f"--preset {settings.preset}"]
            + ([f"--iterations {settings.iterations}"] if settings.iterations else [])
            + ([f"--image-size {settings.image_size}"] if settings.image_size else [])
            + [f"--val {q(settings.val)}"]
            + ([f"--eval-max {settings.eval_max}"] if settings.eval_max else [])
            + [f"--finetuned {q(p)}" for p in settings.finetuned]
            + [f"--compare-models {q(m)}" for m in settings.compare_models]
        )
    ]
    cmds.extend(
        f"spectral-probe finetune --config {q(str(Path(cfg_dir) / 'config.json'))} --run-dir {q(cfg_dir)}"
        for cfg_dir in pilots.table["run_dir"]
    )
    return cmds


def build_report(
    settings: ReportSettings,
    out: str | Path,
    *,
    stage: Callable[[str], None] | None = None,
    pilot_progress: PilotProgress | None = None,
) -> Report:
    """Run the pilots (reusing finished ones under ``out/pilots``), gather the evidence, decide.

    Raises:
        ModelSpecError / CheckpointError: the model cannot be loaded.
        DataError: the data cannot be read or is too small for the pilot splits.
        SpectralProbeError: a pilot was interrupted (re-run to continue) or diverged.
    """
    say = stage or (lambda text: None)
    out = Path(out)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    say("checking the model and the data")
    load_model(settings.model)
    check_pilot_data(settings)
    pilot_configs(settings)  # validates every pilot config before anything runs
    seconds["checks"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("pilot fine-tunes")
    pilots = run_pilots(settings, out / "pilots", progress=pilot_progress)
    bad = pilots.table[pilots.table["status"] != "finished"]
    if not bad.empty:
        row = bad.iloc[0]
        raise SpectralProbeError(
            f"pilot {row['method']} @ {row['rate']} (seed {row['seed']}) is {row['status']} in {row['run_dir']}; "
            "re-run the same command to continue"
        )
    seconds["pilots"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    evidence = gather_evidence(settings, pilots, progress=say)
    seconds["evidence"] = time.perf_counter() - t0

    signals = SpectralEvidence(
        tail_energy=evidence.tail_energy, top_alignment=evidence.top_alignment
    )
    recommendations = {}
    for rate in settings.rates:
        rows = pilots.table[pilots.table["rate"] == rate]
        accs = {
            m: dict(
                zip(rows[rows["method"] == m]["seed"], rows[rows["method"] == m]["val_accuracy"])
            )
            for m in settings.methods
        }  # seed -> accuracy: the methods share seeds and splits, so the comparisons are paired
        n_val = int(rows["n_val"].dropna().min()) if rows["n_val"].notna().any() else 0
        recommendations[rate] = recommend(
            score_pilots(accs, n_val),
            signals,
            alpha=settings.alpha,
            seed_sd_floor=settings.seed_sd_floor,
            default=settings.default_method,
        )
    return Report(
        settings=settings,
        pilots=pilots,
        recommendations=recommendations,
        evidence=evidence,
        signals=signals,
        commands=_commands(settings, pilots, out),
        seconds=seconds,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def pilot_frame(report: Report) -> pd.DataFrame:
    """Pilot table as shown in the report (accuracy in percent)."""
    df = report.pilots.table[
        ["method", "rate", "seed", "val_accuracy", "test_accuracy", "train_seconds", "run_id"]
    ].copy()
    for col in ("val_accuracy", "test_accuracy"):
        df[col] = 100 * df[col]
    return df
