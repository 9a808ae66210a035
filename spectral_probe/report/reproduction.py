"""The paper's findings tested on finished fine-tunes: the numbers and verdicts of Figures
1(b), 1(c), 1(d), 3(a), 3(b), 3(c) and 3(d) (the page ``docs/reproduction.md``).

Two steps. :func:`~spectral_probe.report.reproduction_data.export_reproduction_data`
measures the per-run numbers from run directories (feature spectra of the checkpoints on
the test split, weight angles against the pre-trained start, test errors) into a small
:class:`~spectral_probe.report.reproduction_data.ReproductionData` file;
:func:`reproduction_from_data` decides every figure from that file alone, by the pure
functions of :mod:`~spectral_probe.report.reproduction_numbers` and
:mod:`~spectral_probe.report.reproduction_spectra`, with the rule stated next to each
verdict. :func:`~spectral_probe.report.reproduction_page.write_reproduction_page` renders
the page, so a committed data file regenerates it in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from .._io import write_json
from .._results import TidyResult, records
from .reproduction_data import ReproductionData, export_reproduction_data, select_runs
from .reproduction_numbers import (
    CLAIMS,
    FIGURES,
    Finding,
    angle_finding,
    not_run,
    sweep_finding,
)
from .reproduction_spectra import spectrum_findings

__all__ = [
    "Reproduction",
    "measure_reproduction",
    "reproduction_from_data",
    "select_runs",
    "CLAIMS",
    "FIGURES",
    "Finding",
]


@dataclass(frozen=True)
class Reproduction(TidyResult):
    """The findings of one set of runs.

    Attributes:
        findings: one :class:`Finding` per figure, in :data:`FIGURES` order.
        data: the per-run numbers they were decided from.
    """

    findings: tuple[Finding, ...]
    data: ReproductionData = field(default_factory=ReproductionData)

    main_table: ClassVar[str] = "verdicts"

    @property
    def runs(self) -> pd.DataFrame:
        """The runs used (one row per run)."""
        return self.data.runs

    @property
    def meta(self) -> dict[str, Any]:
        """Where and how the numbers were measured."""
        return self.data.meta

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
                {
                    "figure": f.figure,
                    "verdict": f.verdict,
                    "provisional": f.provisional,
                    "same_effect_as": f.same_effect_as,
                }
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
        from .._results import write_tables_csv

        return write_tables_csv(directory, self.tables())


def reproduction_from_data(data: ReproductionData) -> Reproduction:
    """Decide every figure from the per-run numbers alone (no run directories, no models)."""
    runs = data.runs
    d1, d3 = data.meta.get("figure1_data"), data.meta.get("figure3_data")
    findings: dict[str, Finding] = {}
    layers = data.layers
    f1 = runs[(runs["method"] == "l2") & (runs["dataset"] == d1)]
    rate = None
    if not f1.empty:
        rate = str(f1.loc[f1["rate_percent"] == f1["rate_percent"].max(), "rate"].iloc[0])
    findings["1b"] = angle_finding(layers, rate) if not layers.empty else not_run("1b")
    f3 = runs[(runs["method"].isin(["l2", "l2+bss"])) & (runs["dataset"] == d3) & (runs["k"] <= 1)]
    findings.update(spectrum_findings(runs, data.spectrum, f1, f3))
    findings["3a"] = sweep_finding("3a", runs[runs["dataset"] == d3])
    findings["3d"] = sweep_finding("3d", runs[runs["dataset"] == d3])
    return Reproduction(findings=tuple(findings[f] for f in FIGURES), data=data)


def measure_reproduction(
    root: str | Path,
    *,
    max_batches: int = 10,
    device: str = "cpu",
    figure1_data: str = "mit-indoor67",
    figure3_data: str = "stanford-dogs",
    stage: Any = None,
) -> Reproduction:
    """Measure the per-run numbers under ``root`` and decide every figure from them.

    :func:`~spectral_probe.report.reproduction_data.export_reproduction_data` (its arguments)
    followed by :func:`reproduction_from_data`. A figure whose runs are missing is
    ``not yet run``.
    """
    data = export_reproduction_data(
        root,
        max_batches=max_batches,
        device=device,
        figure1_data=figure1_data,
        figure3_data=figure3_data,
        stage=stage,
    )
    return reproduction_from_data(data)
