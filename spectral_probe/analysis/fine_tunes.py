"""Several fine-tunes of one base compared side by side: one :func:`compare_weights` per fine-tune.

``compare-weights BASE FT_FULL FT_LORA_R8 FT_LORA_R64`` runs :func:`compare_weights` of BASE
against each fine-tune (any model or weight-file spec, a peft adapter of BASE included) and
gathers one row per fine-tune (:data:`FINE_TUNE_COLUMNS`) plus the per-layer summaries of all
of them in one tidy table with a ``fine_tune`` column. Each comparison is the two-model one,
unchanged: BASE's decompositions are made again for each fine-tune (nothing is shared between
runs, so memory stays that of one comparison).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from .._results import TidyResult, records, write_result_json, write_tables_csv
from ..errors import ConfigError
from .weights import WeightComparison, compare_weights

__all__ = ["FINE_TUNE_COLUMNS", "FineTuneComparison", "compare_fine_tunes", "gather_fine_tunes"]

FINE_TUNE_COLUMNS = {
    "fine_tune": "1-based position of the fine-tune on the command line",
    "model_b": "the fine-tune's spec (for an adapter: BASE + adapter)",
    "layers": "layers compared",
    "adapter_layers": "layers the adapter updates (empty: not an adapter)",
    "cos_top": "mean over layers of cos_top (leading 10% of corresponding |cos|)",
    "w_rel_change": "mean over layers of ||W_B - W_A||_F / ||W_A||_F",
    "intruders": "left intruders in all layers",
    "intruders_right": "right intruders in all layers",
    "layers_with_intruders": "layers with at least one left intruder",
    "top_energy": "mean share of ||dW||_F^2 in A's top-r subspace pair",
    "bottom_energy": "mean share in A's bottom-r subspace pair",
    "update_effective_rank": "mean effective rank of dW",
    "update_stable_rank": "mean stable rank of dW",
}


@dataclass(frozen=True)
class FineTuneComparison(TidyResult):
    """Result of :func:`compare_fine_tunes`.

    Attributes:
        fine_tunes: one row per fine-tune, columns :data:`FINE_TUNE_COLUMNS`.
        layers: every run's per-layer summary, with ``fine_tune`` and ``model_b`` first.
        runs: the :class:`~spectral_probe.analysis.WeightComparison` of each fine-tune.
        meta: the base, the fine-tunes and the shared options.
    """

    fine_tunes: pd.DataFrame
    layers: pd.DataFrame
    runs: tuple[WeightComparison, ...]
    meta: dict[str, Any] = field(default_factory=dict)

    main_table: ClassVar[str] = "fine_tunes"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``fine_tunes``, ``layers`` (and ``intruders``, tidy over all runs)."""
        tables = {"fine_tunes": self.fine_tunes, "layers": self.layers}
        frames = [run.intruders.assign(fine_tune=i) for i, run in enumerate(self.runs, start=1)]
        frames = [f for f in frames if not f.empty]
        if frames:
            both = pd.concat(frames, ignore_index=True)
            tables["intruders"] = both[["fine_tune", *[c for c in both if c != "fine_tune"]]]
        return tables

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: meta, the per-fine-tune rows and each run's full record."""
        return {
            "meta": self.meta,
            "fine_tunes": records(self.fine_tunes),
            "runs": [run.to_dict() for run in self.runs],
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        return write_result_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``fine_tunes.csv``, ``layers.csv`` (and ``intruders.csv``)."""
        return write_tables_csv(directory, self.tables())


def _mean(frame: pd.DataFrame, col: str) -> float:
    return float(frame[col].astype(float).mean()) if col in frame and len(frame) else math.nan


def _row(i: int, run: WeightComparison) -> dict[str, Any]:
    df = run.layers
    ok = df[df["status"] == "ok"] if "status" in df else df
    has = "intruders" in ok
    adapter = ok["lora_rank"].notna().sum() if "lora_rank" in ok else None
    return {
        "fine_tune": i,
        "model_b": run.meta.get("model_b"),
        "layers": len(ok),
        "adapter_layers": int(adapter) if adapter is not None else None,
        "cos_top": _mean(ok, "cos_top"),
        "w_rel_change": _mean(ok, "w_rel_change"),
        "intruders": int(ok["intruders"].sum()) if has else None,
        "intruders_right": int(ok["intruders_right"].sum()) if has else None,
        "layers_with_intruders": int((ok["intruders"] > 0).sum()) if has else None,
        "top_energy": _mean(ok, "top_energy"),
        "bottom_energy": _mean(ok, "bottom_energy"),
        "update_effective_rank": _mean(ok, "update_effective_rank"),
        "update_stable_rank": _mean(ok, "update_stable_rank"),
    }


def compare_fine_tunes(
    base: Any,
    fine_tunes: Sequence[Any],
    *,
    progress: Callable[[int, Any], Any] | None = None,
    **options: Any,
) -> FineTuneComparison:
    """:func:`compare_weights` of ``base`` against each of ``fine_tunes``, gathered.

    Args:
        base: the pre-trained model (any spec :func:`compare_weights` takes).
        fine_tunes: two or more fine-tunes of it (a peft adapter of ``base`` included).
        progress: called as ``progress(i, spec)`` before fine-tune ``i`` (1-based); what it
            returns is passed to :func:`compare_weights` as its ``progress``.
        **options: :func:`compare_weights`' options, the same for every fine-tune (a
            ``resume`` folder is shared: its entries are keyed by the sources).

    Raises:
        ConfigError: fewer than one fine-tune.
    """
    if not fine_tunes:
        raise ConfigError("expected at least one fine-tuned model after the base, found none")
    runs = []
    for i, spec in enumerate(fine_tunes, start=1):
        layer_progress = progress(i, spec) if progress is not None else None
        runs.append(compare_weights(base, spec, progress=layer_progress, **options))
    return gather_fine_tunes(runs)


def gather_fine_tunes(runs: Sequence[WeightComparison]) -> FineTuneComparison:
    """One :class:`FineTuneComparison` from the comparisons of one base with each fine-tune."""
    if not runs:
        raise ConfigError("expected at least one comparison, found none")
    rows = [_row(i, run) for i, run in enumerate(runs, start=1)]
    table = pd.DataFrame(rows, columns=list(FINE_TUNE_COLUMNS))
    layers = pd.concat(
        [
            run.layers.assign(fine_tune=i, model_b=run.meta.get("model_b"))
            for i, run in enumerate(runs, start=1)
        ],
        ignore_index=True,
    )
    first = ["fine_tune", "model_b"]
    layers = layers[first + [c for c in layers.columns if c not in first]]
    meta = {
        "model_a": runs[0].meta.get("model_a"),
        "fine_tunes": [run.meta.get("model_b") for run in runs],
        "options": runs[0].meta.get("options", {}),
    }
    for key in ("intruder_k", "intruder_epsilon"):
        if key in runs[0].meta:
            meta[key] = runs[0].meta[key]
    return FineTuneComparison(table, layers, tuple(runs), meta)
