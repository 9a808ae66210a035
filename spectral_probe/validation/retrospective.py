"""The advice's anchor on the paper's own numbers: regret of every fixed policy on Table 2.

Each cell of the paper's Table 2 (dataset x sampling rate, ResNet-50, mean top-1 over five
runs) is a task; the oracle picks the best of the six methods in that cell. A fixed policy
"always X" loses :math:`\\max_m \\mathrm{acc}_m - \\mathrm{acc}_X` points there. Any rule that
reads pilots and spectra has to beat the best of these fixed policies to be worth running.

Choosing the default on the same 20 cells that score it flatters it, so the choice is also
made **leave one dataset out**: for each dataset, the fixed policy with the lowest mean
regret on the other datasets is scored on the held-out one's cells. And the best policy is
compared, paired over cells, with every other one (wins, mean difference with its interval,
paired t and sign tests).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._results import TidyResult
from .stats import WITHIN, paired_difference, regret_summary

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OLD_CANDIDATES", "RetrospectiveResult", "retrospective"]

#: The report's candidates before DELTA+BSS joined (used for the tie statistics).
OLD_CANDIDATES = ("L2", "L2+BSS", "L2-SP", "L2-SP+BSS")


@dataclass(frozen=True)
class RetrospectiveResult(TidyResult):
    """Fixed policies on the paper's Table 2.

    Attributes:
        cells: one row per task (``dataset``, ``rate_percent``), one column per method (top-1
            %), ``oracle`` (the best), ``best`` (its method), ``gap_top2_old`` (points between
            the best two of :data:`OLD_CANDIDATES`), ``std_best`` (the best method's std).
        regrets: tidy ``task, policy, regret`` (points).
        policies: one row per policy: ``policy``, ``regret`` (mean), ``max_regret``,
            ``share_within`` (regret <= 0.5 points), ``n_tasks``, ``wins`` (cells it is best in).
        lodo: one row per held-out dataset: ``dataset``, ``chosen`` (the policy with the
            lowest mean regret on the other datasets), ``regret`` (its mean regret on the
            held-out cells), ``n_tasks``.
        pairs: the best policy against each other one, paired over cells (``a``, ``b`` and
            the fields of :class:`~spectral_probe.validation.stats.PairedDifference`, in
            points of top-1 of ``a`` minus ``b``).
    """

    cells: pd.DataFrame
    regrets: pd.DataFrame
    policies: pd.DataFrame
    lodo: pd.DataFrame
    pairs: pd.DataFrame

    main_table: ClassVar[str] = "policies"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``policies``, ``cells``, ``regrets``, ``lodo`` and ``pairs``."""
        return {
            "policies": self.policies,
            "cells": self.cells,
            "regrets": self.regrets,
            "lodo": self.lodo,
            "pairs": self.pairs,
        }

    @property
    def lodo_regret(self) -> float:
        """Mean regret per cell of the default chosen leave one dataset out."""
        w = self.lodo["n_tasks"].to_numpy(dtype=float)
        return float((self.lodo["regret"].to_numpy(dtype=float) * w).sum() / w.sum())

    @property
    def best_policy(self) -> str:
        """The fixed policy with the lowest mean regret."""
        return str(self.policies.iloc[0]["policy"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready content."""
        return {
            "format": "spectral-probe-validation-retrospective",
            "source": "spectral_probe/resources/table2_top1.csv (the paper's Table 2, ResNet-50)",
            "within_points": WITHIN,
            "best_policy": self.best_policy,
            "median_gap_top2_old": float(self.cells["gap_top2_old"].median()),
            "lodo_regret": self.lodo_regret,
            "policies": self.policies.to_dict(orient="records"),
            "lodo": self.lodo.to_dict(orient="records"),
            "pairs": self.pairs.to_dict(orient="records"),
            "cells": self.cells.to_dict(orient="records"),
        }

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as strict JSON, atomically."""
        from .._io import write_json

        return write_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """``policies.csv``, ``cells.csv``, ``regrets.csv``, ``lodo.csv``, ``pairs.csv``."""
        from .._results import write_tables_csv

        return write_tables_csv(directory, self.tables())


def retrospective(table: pd.DataFrame | None = None) -> RetrospectiveResult:
    """Regret of "always X" for every method of ``table`` (default: the paper's Table 2).

    Args:
        table: tidy ``dataset, method, sampling_rate_percent, top1_mean[, top1_std]`` rows.
    """
    import pandas as pd

    from ..training.aggregate import paper_table2

    df = paper_table2() if table is None else table
    wide = df.pivot_table(
        index=["dataset", "sampling_rate_percent"], columns="method", values="top1_mean", sort=False
    )
    methods = list(dict.fromkeys(df["method"]))
    wide = wide[methods]
    if wide.isna().any().any():
        raise ValueError("expected every method in every cell of the table, found gaps")
    oracle = wide.max(axis=1)
    cells = wide.reset_index().rename(columns={"sampling_rate_percent": "rate_percent"})
    cells["oracle"] = oracle.to_numpy()
    cells["best"] = wide.idxmax(axis=1).to_numpy()
    old = [m for m in OLD_CANDIDATES if m in wide.columns]
    top2 = np.sort(wide[old].to_numpy(), axis=1)[:, -2:] if len(old) >= 2 else None
    cells["gap_top2_old"] = top2[:, 1] - top2[:, 0] if top2 is not None else np.nan
    if "top1_std" in df.columns:
        std = df.set_index(["dataset", "sampling_rate_percent", "method"])["top1_std"]
        cells["std_best"] = [
            float(std.loc[(d, r, b)])
            for d, r, b in zip(cells["dataset"], cells["rate_percent"], cells["best"])
        ]
    tasks = [f"{d} @ {r:g}%" for d, r in zip(cells["dataset"], cells["rate_percent"])]
    rows = []
    for method in methods:
        lost = oracle.to_numpy() - wide[method].to_numpy()
        rows += [
            {"task": t, "policy": f"always {method}", "regret": float(v)}
            for t, v in zip(tasks, lost)
        ]
    regrets = pd.DataFrame(rows)
    regrets["dataset"] = np.tile(cells["dataset"].to_numpy(), len(methods))
    policies = regret_summary(regrets)
    wins = cells["best"].value_counts()
    policies["wins"] = [int(wins.get(p.removeprefix("always "), 0)) for p in policies["policy"]]
    return RetrospectiveResult(
        cells=cells, regrets=regrets, policies=policies, lodo=_leave_one_dataset_out(regrets),
        pairs=_pairs_with_best(wide, str(policies.iloc[0]["policy"]).removeprefix("always ")),
    )  # fmt: skip


def _leave_one_dataset_out(regrets: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for dataset in dict.fromkeys(regrets["dataset"]):
        held = regrets["dataset"] == dataset
        if held.all():
            raise ValueError("expected at least two datasets to leave one out, found one")
        chosen = str(regret_summary(regrets[~held]).iloc[0]["policy"])
        mine = regrets[held & (regrets["policy"] == chosen)]["regret"]
        rows.append(
            {
                "dataset": dataset,
                "chosen": chosen,
                "regret": float(mine.mean()),
                "n_tasks": len(mine),
            }
        )
    return pd.DataFrame(rows, columns=["dataset", "chosen", "regret", "n_tasks"])


def _pairs_with_best(wide: pd.DataFrame, best: str) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {"a": best, "b": other, **paired_difference(wide[best], wide[other]).to_dict()}
        for other in wide.columns
        if other != best
    ]
    return pd.DataFrame(rows)
