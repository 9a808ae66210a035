"""From the runs of a suite to the verdict: regret of each policy, rank agreement, signal τ.

Per task, the oracle is the candidate with the best mean full-run test accuracy. Policies:

* ``advice``: what :func:`~spectral_probe.report.recommend` says from the pilots;
* ``best pilot``: the highest mean pilot validation accuracy, no tests, no tie-break;
* ``always X`` for every candidate X.

Rank agreement: Kendall's τ and the weighted τ between the pilots' mean validation accuracy
and the full runs' mean test accuracy over the candidates of a task, averaged over tasks.
Signals: across tasks, τ between each signal (the report's spectral signals and the LogME
score of the pre-trained features) and the full-run gain of ``l2+bss`` and of ``l2-sp`` over
``l2``; and, for the spectral signals, the regret of the former tie-break rule that read that
signal (``l2+bss`` if the tail energy is at least 5%, else ``l2``; ``l2`` if the top-layer
alignment is below 0.9, else ``l2-sp``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from .._results import TidyResult
from .harness import SIGNALS, full_cells, pilot_cells, task_signals
from .stats import kendall_tau, regret_summary, weighted_tau
from .suites import Suite

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FORMER_RULES", "ValidationResult", "analyse_suite"]

#: The former tie-break rules, as fixed policies of one signal each: (threshold, choice when
#: the signal is >= threshold, choice below).
FORMER_RULES = {
    "tail_energy": (0.05, "l2+bss", "l2"),
    "top_alignment": (0.9, "l2-sp", "l2"),
}
_GAINS = {"gain_bss": "l2+bss", "gain_sp": "l2-sp"}


@dataclass(frozen=True)
class ValidationResult(TidyResult):
    """The outcome of a validation suite.

    Attributes:
        suite: the suite's definition.
        runs: one row per run: ``task``, ``phase`` (pilot/full), ``method``, ``seed``,
            ``run_id``, ``status``, ``val_accuracy``, ``test_accuracy`` (percent).
        tasks: one row per task: accuracies, the advice and its outcome, the best pilot, the
            oracle, ``full_seed_sd`` (mean over candidates of the seed standard deviation of
            the full runs, the noise a regret should be read against), ``kendall_tau`` and
            ``weighted_tau`` of pilots vs full runs, signals, gains.
        regrets: tidy ``task, policy, choice, regret`` (points).
        policies: per policy ``regret`` (mean), ``max_regret``, ``share_within``,
            ``n_tasks``, ``kendall_tau`` (pilot vs full ranking; NaN for fixed policies).
        signals: per signal and gain: ``kendall_tau``, ``weighted_tau``, ``n_tasks``, and
            ``regret`` (mean) of the former rule that read the signal (NaN for LogME, which
            no rule ever read).
    """

    suite: dict[str, Any]
    runs: pd.DataFrame
    tasks: pd.DataFrame
    regrets: pd.DataFrame
    policies: pd.DataFrame
    signals: pd.DataFrame

    main_table: ClassVar[str] = "policies"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``policies``, ``signals``, ``tasks``, ``regrets`` and ``runs``."""
        return {"policies": self.policies, "signals": self.signals, "tasks": self.tasks,
                "regrets": self.regrets, "runs": self.runs}  # fmt: skip

    @property
    def best_fixed_policy(self) -> str:
        fixed = self.policies[self.policies["policy"].str.startswith("always ")]
        return str(fixed.iloc[0]["policy"]) if len(fixed) else ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "spectral-probe-validation",
            "suite": self.suite,
            "best_fixed_policy": self.best_fixed_policy,
            "policies": self.policies.to_dict(orient="records"),
            "signals": self.signals.to_dict(orient="records"),
            "tasks": self.tasks.to_dict(orient="records"),
            "runs": self.runs.to_dict(orient="records"),
        }

    def to_json(self, path: str | Path) -> Path:
        from .._io import write_json

        return write_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        from .._results import write_tables_csv

        return write_tables_csv(directory, self.tables())


def _read(run_dir: Path) -> tuple[str, float | None, float | None, int | None]:
    import json

    final = run_dir / "final.json"
    if not final.is_file():
        return "missing", None, None, None
    data = json.loads(final.read_text())
    val = data.get("val") or {}
    return str(data.get("status")), val.get("accuracy"), data.get("test_accuracy"), val.get("n")


def _pct(x: float | None) -> float:
    return 100 * float(x) if x is not None and math.isfinite(float(x)) else math.nan


def analyse_suite(
    suite: Suite, out: str | Path, *, device: str = "auto", signals: bool = True
) -> ValidationResult:
    """Read the finished runs of ``suite`` under ``out/runs`` and score every policy."""
    import pandas as pd

    from ..report.recommend import recommend, score_pilots

    out = Path(out)
    run_rows: list[dict[str, Any]] = []
    task_rows: list[dict[str, Any]] = []
    regret_rows: list[dict[str, Any]] = []
    for task in suite.tasks:
        pilots, fulls = pilot_cells(suite, task, device), full_cells(suite, task, device)
        val: dict[str, dict[int, float]] = {m: {} for m in suite.methods}
        test: dict[str, list[float]] = {m: [] for m in suite.methods}
        n_val = 0
        for phase, cells in (("pilot", pilots), ("full", fulls)):
            for cfg in cells:
                status, v, t, n = _read(out / "runs" / cfg.run_id)
                run_rows.append({"task": task.name, "phase": phase, "method": cfg.method, "seed": cfg.seed,
                                 "run_id": cfg.run_id, "status": status, "val_accuracy": _pct(v),
                                 "test_accuracy": _pct(t)})  # fmt: skip
                if status == "missing":  # not run yet: the task is scored only once complete
                    continue
                if phase == "pilot" and v is not None:
                    val[cfg.method][cfg.seed] = float(v)
                    n_val = int(n or n_val)
                if phase == "full":  # a diverged full run scores 0: that is what the user would get
                    test[cfg.method].append(_pct(t) if status == "finished" else 0.0)
        piloted = {m: accs for m, accs in val.items() if accs}
        if not piloted or any(not test[m] for m in suite.methods):
            continue
        full_mean = {m: float(np.mean(test[m])) for m in suite.methods}
        oracle = max(full_mean.values())
        rec = recommend(score_pilots(piloted, n_val))
        pilot_mean = {m: 100 * float(np.mean(list(piloted[m].values()))) for m in piloted}
        best_pilot = str(rec.ranking.iloc[0]["method"])
        common = [m for m in suite.methods if m in pilot_mean]
        tau = kendall_tau([pilot_mean[m] for m in common], [full_mean[m] for m in common])
        wtau = weighted_tau([pilot_mean[m] for m in common], [full_mean[m] for m in common])
        sig = task_signals(suite, task, out, device) if signals else dict.fromkeys(SIGNALS)
        choices = {"advice": rec.method, "best pilot": best_pilot}
        choices.update({f"always {m}": m for m in suite.methods})
        for name, (threshold, above, below) in FORMER_RULES.items():
            value = sig.get(name)
            if value is not None and above in full_mean and below in full_mean:
                choices[f"former rule: {name}"] = above if value >= threshold else below
        for policy, choice in choices.items():
            regret_rows.append({"task": task.name, "policy": policy, "choice": choice,
                                "regret": oracle - full_mean[choice]})  # fmt: skip
        row: dict[str, Any] = {
            "task": task.name,
            "model": task.model,
            "data": task.data,
            "rate": task.rate,
        }
        row.update({f"full {m}": full_mean[m] for m in suite.methods})
        row.update({f"pilot {m}": pilot_mean.get(m, math.nan) for m in suite.methods})
        row.update({
            "advice": rec.method, "outcome": rec.outcome, "confidence": rec.confidence, "best_pilot": best_pilot,
            "oracle_method": max(full_mean, key=lambda m: full_mean[m]), "oracle": oracle,
            "full_seed_sd": _seed_sd(test),
            "kendall_tau": tau, "weighted_tau": wtau, **sig,
        })  # fmt: skip
        for gain, method in _GAINS.items():
            row[gain] = (
                full_mean[method] - full_mean["l2"]
                if method in full_mean and "l2" in full_mean
                else math.nan
            )
        task_rows.append(row)
    regrets = pd.DataFrame(regret_rows, columns=["task", "policy", "choice", "regret"])
    tasks = pd.DataFrame(task_rows)
    policies = regret_summary(regrets)
    mean_tau = float(tasks["kendall_tau"].mean()) if len(tasks) else math.nan
    mean_wtau = float(tasks["weighted_tau"].mean()) if len(tasks) else math.nan
    pilot_based = policies["policy"].isin(["advice", "best pilot"])
    policies["kendall_tau"] = np.where(pilot_based, mean_tau, math.nan)
    policies["weighted_tau"] = np.where(pilot_based, mean_wtau, math.nan)
    return ValidationResult(
        suite=suite.to_dict(), runs=pd.DataFrame(run_rows), tasks=tasks, regrets=regrets, policies=policies,
        signals=_signal_table(tasks, regrets),
    )  # fmt: skip


def _seed_sd(accuracies: dict[str, list[float]]) -> float:
    """Mean over candidates of the seed standard deviation of the full-run accuracy (points)."""
    sds = [float(np.std(a, ddof=1)) for a in accuracies.values() if len(a) > 1]
    return float(np.mean(sds)) if sds else math.nan


def _signal_table(tasks: pd.DataFrame, regrets: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    rows = []
    for name in SIGNALS:
        rule = regrets[regrets["policy"] == f"former rule: {name}"]["regret"]
        for gain in _GAINS:
            if len(tasks) and name in tasks and gain in tasks:
                both = tasks[[name, gain]].apply(pd.to_numeric, errors="coerce").dropna()
            else:
                both = pd.DataFrame(columns=[name, gain])
            x, y = both[name].to_numpy(dtype=float), both[gain].to_numpy(dtype=float)
            rows.append({
                "signal": name, "gain": gain, "n_tasks": len(both),
                "kendall_tau": kendall_tau(x, y) if len(both) > 1 else math.nan,
                "weighted_tau": weighted_tau(x, y) if len(both) > 1 else math.nan,
                "regret": float(rule.mean()) if len(rule) else math.nan,
            })  # fmt: skip
    return pd.DataFrame(
        rows, columns=["signal", "gain", "n_tasks", "kendall_tau", "weighted_tau", "regret"]
    )
