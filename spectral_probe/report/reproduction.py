"""The paper's findings tested on finished fine-tunes: the numbers and verdicts of Figures
1(b), 1(c), 1(d), 3(a), 3(b), 3(c) and 3(d) (the page ``docs/reproduction.md``).

Everything is measured from run directories (the ``reproduce`` sweep's, or any sweep's with
L2 and L2+BSS runs at several sampling rates): the checkpoints go through
:func:`~spectral_probe.analysis.compare_weights` against their pre-trained start (Figure 1b)
and :func:`~spectral_probe.analysis.feature_spectrum` on the test split (1c, 1d, 3b, 3c);
test accuracies come from ``final.json`` (3a, 3d). The deciding numbers are pure functions of
those tables (:mod:`~spectral_probe.report.reproduction_numbers`), and every verdict follows a
rule stated next to it. :func:`~spectral_probe.report.reproduction_page.write_reproduction_page`
renders the page.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from .._io import write_json
from ..analysis._results import TidyResult, records
from .reproduction_numbers import (
    CLAIMS,
    FIGURES,
    Finding,
    angle_finding,
    not_run,
    sweep_finding,
)
from .reproduction_spectra import spectrum_findings

if TYPE_CHECKING:
    from ..analysis import FeatureSpectra, WeightComparison

__all__ = ["Reproduction", "measure_reproduction", "select_runs", "CLAIMS", "FIGURES", "Finding"]

Stage = Callable[[str], None]


@dataclass(frozen=True)
class Reproduction(TidyResult):
    """The findings of one folder of runs.

    Attributes:
        findings: one :class:`Finding` per figure, in :data:`FIGURES` order.
        runs: the finished runs used (one row per run: id, dataset, method, rate, seed, k, r,
            test error).
        meta: the runs folder, datasets, settings of the measurement, what the runs were.
        spectra: the feature spectra of the L2 and L2+BSS runs on the test split, per data
            spec (model labels are run ids), for the figures.
        weights: the weight comparisons of the Figure 1(b) runs, by run id.
    """

    findings: tuple[Finding, ...]
    runs: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    spectra: dict[str, FeatureSpectra] = field(default_factory=dict)
    weights: dict[str, WeightComparison] = field(default_factory=dict)

    main_table: ClassVar[str] = "verdicts"

    def finding(self, figure: str) -> Finding:
        """The finding of ``figure`` (``"1b"``, ``"3c"``...)."""
        for f in self.findings:
            if f.figure == figure:
                return f
        raise KeyError(f"expected a figure in {list(FIGURES)}, found {figure!r}")

    def tables(self) -> dict[str, pd.DataFrame]:
        """``verdicts`` (one row per figure), ``runs`` and each finding's table (``fig1b``...)."""
        verdicts = pd.DataFrame(
            [
                {"figure": f.figure, "verdict": f.verdict, "provisional": f.provisional}
                for f in self.findings
            ]
        )
        out = {"verdicts": verdicts, "runs": self.runs}
        out.update({f"fig{f.figure}": f.table for f in self.findings if not f.table.empty})
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: meta, runs and every finding with its numbers and table."""
        return {
            "meta": self.meta,
            "runs": records(self.runs),
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON (atomically)."""
        return write_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """One CSV per table of :meth:`tables`."""
        from ..analysis._results import write_tables_csv

        return write_tables_csv(directory, self.tables())


def select_runs(root: str | Path) -> pd.DataFrame:
    """The finished image-classification runs under ``root``, one row each.

    Columns: ``run_id``, ``path``, ``model``, ``data``, ``dataset``, ``method``, ``rate``,
    ``rate_percent``, ``seed``, ``k`` (BSS's k, 0 without BSS), ``r`` (TSVD's r, 0 without),
    ``error`` (test top-1 error, %), ``image_size``, ``batch_size``, ``iterations``,
    ``train_seconds`` (wall time of the training loop, from ``final.json``). Empty
    (with these columns) when ``root`` holds none or does not exist.
    """
    from ..training.aggregate import collect_runs

    columns = [
        "run_id",
        "path",
        "model",
        "data",
        "dataset",
        "method",
        "rate",
        "rate_percent",
        "seed",
        "k",
        "r",
        "error",
        "image_size",
        "batch_size",
        "iterations",
        "train_seconds",
    ]
    if not Path(root).is_dir():
        return pd.DataFrame(columns=columns)
    runs = collect_runs(root)
    if runs.empty:
        return pd.DataFrame(columns=columns)
    runs = runs[
        (runs["status"] == "finished")
        & (runs.get("task", "image-classification") == "image-classification")
    ]
    runs = runs.copy()
    runs["k"] = runs["hp.bss.k"].fillna(0).astype(int) if "hp.bss.k" in runs else 0
    runs["r"] = runs["hp.tsvd.r"].fillna(0).astype(int) if "hp.tsvd.r" in runs else 0
    runs["error"] = 100.0 - runs["test_accuracy"]
    for col in columns:
        if col not in runs:
            runs[col] = None
    return (
        runs[columns]
        .sort_values(["dataset", "method", "rate_percent", "k", "r", "seed"])
        .reset_index(drop=True)
    )


def _pick_dataset(runs: pd.DataFrame, prefer: str, methods: tuple[str, ...]) -> str | None:
    """``prefer`` if it has runs of ``methods``, else the dataset with the most such runs."""
    have = runs[runs["method"].isin(methods)]
    if have.empty:
        return None
    if prefer in set(have["dataset"]):
        return prefer
    return str(have["dataset"].value_counts().index[0])


def _spectra(runs: pd.DataFrame, max_batches: int, device: str) -> dict[str, FeatureSpectra]:
    """Feature spectra of the runs' checkpoints on the test split, per data spec (labels: run ids).

    Every checkpoint of one data spec sees the same test samples in the same batches.
    """
    from ..analysis import feature_spectrum

    out = {}
    for data, group in runs.groupby("data", sort=True):
        models = {
            row.run_id: str(Path(row.path) / "model.safetensors") for row in group.itertuples()
        }
        out[str(data)] = feature_spectrum(
            models,
            str(data),
            split="test",
            batch_size=int(group["batch_size"].iloc[0]),
            max_batches=max_batches,
            image_size=int(group["image_size"].iloc[0]),
            dataset_spectrum=False,
            device=device,
        )
    return out


def measure_reproduction(
    root: str | Path,
    *,
    max_batches: int = 10,
    device: str = "cpu",
    figure1_data: str = "mit-indoor67",
    figure3_data: str = "stanford-dogs",
    stage: Stage | None = None,
) -> Reproduction:
    """Measure every figure's deciding numbers from the finished runs under ``root``.

    Figures 1(b-d) use the L2 runs of ``figure1_data`` (the paper's MIT Indoor 67; else the
    dataset with the most L2 runs), Figures 3(a-d) the runs of ``figure3_data`` (the paper's
    Stanford Dogs; else the dataset with the most L2+BSS runs). A figure whose runs are missing
    is ``not yet run``.

    Args:
        root: folder of run directories (any depth); it may be missing (every figure not run).
        max_batches: test batches per checkpoint in the feature spectra (rows: the runs' batch size).
        device: where checkpoints are evaluated and weights decomposed.
        figure1_data: the dataset name preferred for Figure 1.
        figure3_data: the dataset name preferred for Figure 3.
        stage: called with a line before each long step.
    """
    say = stage or (lambda text: None)
    runs = select_runs(root)
    d1 = _pick_dataset(runs, figure1_data, ("l2",))
    d3 = _pick_dataset(runs, figure3_data, ("l2+bss", "l2+tsvd"))
    plain = runs[(runs["method"] == "l2") & (runs["dataset"].isin([d1, d3]))]
    bss = runs[(runs["method"] == "l2+bss") & (runs["k"] == 1) & (runs["dataset"] == d3)]
    spectra: dict[str, FeatureSpectra] = {}
    measured = pd.concat([plain, bss], ignore_index=True)
    if not measured.empty:
        say(f"feature spectra of {len(measured)} checkpoints on the test split")
        spectra = _spectra(measured, max_batches, device)
    weights: dict[str, WeightComparison] = {}
    top = runs[(runs["method"] == "l2") & (runs["dataset"] == d1)]
    if not top.empty:
        top = top[top["rate_percent"] == top["rate_percent"].max()]
        say(
            f"weights of {len(top)} L2 runs at {top['rate'].iloc[0]} against their pre-trained start"
        )
        from ..analysis import compare_weights

        for row in top.itertuples():
            weights[str(row.run_id)] = compare_weights(
                str(row.model), str(Path(row.path) / "model.safetensors"), device=device
            )
    findings: dict[str, Finding] = {}
    findings["1b"] = angle_finding(weights, top) if weights else not_run("1b")
    f1 = runs[(runs["method"] == "l2") & (runs["dataset"] == d1)]
    f3 = runs[(runs["method"].isin(["l2", "l2+bss"])) & (runs["dataset"] == d3) & (runs["k"] <= 1)]
    batches = (
        pd.concat([s.batches for s in spectra.values()], ignore_index=True) if spectra else None
    )
    findings.update(spectrum_findings(batches, f1, f3))
    findings["3a"] = sweep_finding("3a", runs[runs["dataset"] == d3])
    findings["3d"] = sweep_finding("3d", runs[runs["dataset"] == d3])
    meta = {
        "runs_dir": str(root),
        "figure1_data": d1,
        "figure3_data": d3,
        "max_batches": max_batches,
        "n_runs": len(runs),
        "settings": _settings(runs),
    }
    return Reproduction(
        findings=tuple(findings[f] for f in FIGURES),
        runs=runs,
        meta=meta,
        spectra=spectra,
        weights=weights,
    )


def _settings(runs: pd.DataFrame) -> dict[str, Any]:
    """What the runs were: models, datasets, methods, rates, seeds, iterations, image sizes."""
    if runs.empty:
        return {}

    def values(col: str) -> list[Any]:
        return sorted({v for v in runs[col].tolist() if v is not None and v == v}, key=str)

    rates = runs.drop_duplicates("rate").sort_values("rate_percent")["rate"].tolist()
    return {
        "models": values("model"),
        "datasets": values("dataset"),
        "methods": values("method"),
        "rates": rates,
        "seeds": values("seed"),
        "iterations": values("iterations"),
        "image_sizes": values("image_size"),
        "batch_sizes": values("batch_size"),
        "train_hours": round(float(pd.to_numeric(runs["train_seconds"]).fillna(0).sum()) / 3600, 2),
    }
