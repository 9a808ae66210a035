"""docs/select-layers.md, "Evidence": per-run data from the sweep, then paired verdicts.

    python scripts/select_layers_evidence.py --runs runs/select-layers-minilm \\
        --selected docs/select-layers/minilm-top25/unfrozen_parameters.yaml \\
        --csv docs/select-layers/evidence.csv          # collect the runs into the CSV, then analyse
    python scripts/select_layers_evidence.py --csv docs/select-layers/evidence.csv   # analyse only

A run's arm comes from its resolved ``unfrozen_parameters``: none is ``all``, the patterns of
``--selected`` are ``selected``, any other set is ``random``. Arms are paired by seed (same
data order, head initialisation and dropout); each comparison is
:func:`spectral_probe.validation.stats.paired_difference` of dev accuracy in points, with its
95% t interval, and the verdict is three-way: ``A better`` when the interval lies above 0,
``B better`` when below, else ``inconclusive``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from spectral_probe.training.freeze import read_unfrozen_parameters
from spectral_probe.validation.stats import paired_difference


def collect(runs: Path, selected: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for final in sorted(runs.glob("*/final.json")):
        meta = json.loads((final.parent / "config.json").read_text())
        result = json.loads(final.read_text())
        patterns = tuple(meta["config"].get("unfrozen_parameters") or ())
        arm = "all" if not patterns else "selected" if patterns == selected else "random"
        modules = [p for p in patterns if not p.startswith("^")]
        rows.append(
            {
                "run_id": meta["run_id"],
                "seed": meta["config"]["seed"],
                "arm": arm,
                "dev_accuracy": 100 * result["evals"]["test"]["accuracy"],
                "dev_n": result["evals"]["test"]["n"],
                "trainable_parameters": meta.get("trainable_parameters"),
                "train_seconds": result["timings"]["train_seconds"],
                "unfrozen_modules": " ".join(modules),
            }
        )
    return pd.DataFrame(rows).sort_values(["seed", "arm"], ignore_index=True)


def analyse(frame: pd.DataFrame) -> pd.DataFrame:
    wide = frame.pivot(index="seed", columns="arm", values="dev_accuracy").dropna()
    out = []
    for a, b in (("selected", "random"), ("selected", "all"), ("random", "all")):
        r = paired_difference(wide[a], wide[b])
        verdict = (
            f"{a} better" if r.ci_low > 0 else f"{b} better" if r.ci_high < 0 else "inconclusive"
        )
        out.append(
            {"comparison": f"{a} - {b}", "seeds": r.n, "wins": r.wins, "losses": r.losses,
             "mean": round(r.mean, 2), "ci_low": round(r.ci_low, 2),
             "ci_high": round(r.ci_high, 2), "verdict": verdict}
        )  # fmt: skip
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, help="the sweep's run folder (collect it first)")
    parser.add_argument("--selected", type=Path, help="the select-layers YAML of the runs")
    parser.add_argument("--csv", type=Path, required=True, help="per-run CSV (written or read)")
    args = parser.parse_args()
    if args.runs is not None:
        if args.selected is None:
            raise SystemExit("expected --selected with --runs")
        collect(args.runs, read_unfrozen_parameters(args.selected)).to_csv(
            args.csv, index=False, float_format="%.4f"
        )
    frame = pd.read_csv(args.csv)
    summary = frame.groupby("arm")["dev_accuracy"].agg(["count", "mean", "std"]).round(2)
    print(summary.to_string())
    print()
    print(analyse(frame).to_string(index=False))


if __name__ == "__main__":
    main()
