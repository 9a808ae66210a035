"""LoRA against full fine-tuning: the evidence of docs/what-changed.md, from runs made here.

Two steps:

    # 1. from the finished runs of sweeps/what-changed-tune.toml and sweeps/what-changed.toml:
    #    one compare-weights per run (pre-trained Lite0 vs the run's merged model.safetensors),
    #    written as small CSVs beside the page
    python scripts/what_changed_evidence.py collect --runs runs/what-changed \
        --out docs/what-changed/data
    # 2. every table and verdict of the page's "Evidence" section, from those CSVs alone
    python scripts/what_changed_evidence.py summarise --data docs/what-changed/data

Intruders are counted with compare-weights' defaults (k = 10, epsilon = 0.5, left vectors:
peft's detector), in every compared layer and in the layers LoRA adapts (the run's
adapter_config.json target_modules; the same layers for the full fine-tunes). The verdict is
on the paired-by-seed difference LoRA - full of the count in the adapted layers, its 95% t
interval (spectral_probe.validation.stats.paired_difference): reproduced if the interval lies
above 0, contradicted if it lies below 0, inconclusive otherwise. Where every pair ties (the
interval is [0, 0] only because three equal pairs have no spread), the verdict is
"inconclusive (not detected in any seed)": three ties cannot tell a zero effect from a small one.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pandas as pd

BASE = "bundled:efficientnet_lite0"
TUNE = "sweeps/what-changed-tune.toml"
FINAL = "sweeps/what-changed.toml"
LAYER_COLUMNS = [
    "layer",
    "rows",
    "cols",
    "intruders",
    "intruders_right",
    "w_rel_change",
    "update_effective_rank",
    "update_stable_rank",
    "update_rank_90",
    "top_energy",
    "bottom_energy",
    "chance_energy",
    "subspace_rank",
]


def _variant(config: dict) -> str:
    lora = config.get("lora") or {}
    if not lora:
        return "full"
    return f"{'rsLoRA' if lora.get('rslora') else 'LoRA'} r={lora['rank']}"


def _run_row(run_dir: Path) -> dict:
    meta = json.loads((run_dir / "config.json").read_text())
    final = json.loads((run_dir / "final.json").read_text())
    cfg = meta["config"]
    lr_adapted = cfg["lr"] / cfg["head_lr_ratio"]
    return {
        "variant": _variant(cfg),
        "seed": cfg["seed"],
        "lr_head": cfg["lr"],
        "lr_adapted": round(lr_adapted, 6),
        "lora_alpha": (cfg.get("lora") or {}).get("alpha"),
        "val_accuracy": final["val"]["accuracy"],
        "n_val": final["val"]["n"],
        "test_accuracy": final["test_accuracy"],
        "n_test": final["evals"]["test"]["n"],
        "run_id": run_dir.name,
    }


def _compared(run_dir: Path) -> pd.DataFrame:
    """compare_weights(pre-trained, the run's model) per layer, kept in the run directory."""
    cache = run_dir / "what_changed_layers.csv"
    if not cache.is_file():
        from spectral_probe.analysis import compare_weights

        result = compare_weights(BASE, str(run_dir / "model.safetensors"))
        df = result.layers[result.layers["status"] == "ok"][LAYER_COLUMNS]
        df.to_csv(cache.with_suffix(".partial"), index=False)
        cache.with_suffix(".partial").replace(cache)
    return pd.read_csv(cache)


def collect(runs: Path, out: Path) -> None:
    from spectral_probe.training import load_sweep

    out.mkdir(parents=True, exist_ok=True)
    tune = [_run_row(runs / c.run_id) for c in load_sweep(TUNE).configs()]
    pd.DataFrame(tune).to_csv(out / "tune.csv", index=False)
    final = [_run_row(runs / c.run_id) for c in load_sweep(FINAL).configs()]
    targets: set[str] = set()  # peft stores them as name suffixes (conv_pw, ...)
    for row in final:
        adapter = runs / row["run_id"] / "adapter" / "adapter_config.json"
        if adapter.is_file():
            targets |= set(json.loads(adapter.read_text())["target_modules"])
    layers = []
    every = {row["run_id"]: row for row in [*tune, *final]}  # the tuning runs too (seed 0)
    for run_id, row in every.items():
        df = _compared(runs / run_id)
        df = df.assign(
            run_id=run_id,
            variant=row["variant"],
            seed=row["seed"],
            lr_adapted=row["lr_adapted"],
            adapted=[any(n == t or n.endswith("." + t) for t in targets) for n in df["layer"]],
        )
        layers.append(df)
    table = pd.concat(layers, ignore_index=True)
    first = ["run_id", "variant", "seed", "lr_adapted", "layer", "adapted"]
    table = table[first + [c for c in table.columns if c not in first]]
    table.to_csv(out / "layers.csv", index=False)
    pd.DataFrame(final).to_csv(out / "runs.csv", index=False)
    print(f"wrote {out}/tune.csv, runs.csv, layers.csv ({len(table)} layer rows)")


def _t_interval(values: pd.Series) -> tuple[float, float, float]:
    from scipy import stats

    x = values.astype(float).to_numpy()
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(x) - 1)) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return mean, mean - half, mean + half


def summarise(data: Path) -> None:
    from spectral_probe.report.reproduction_numbers import three_way
    from spectral_probe.validation.stats import paired_difference

    tune = pd.read_csv(data / "tune.csv")
    runs = pd.read_csv(data / "runs.csv")
    layers = pd.read_csv(data / "layers.csv")
    order = ["full", "LoRA r=8", "LoRA r=64", "rsLoRA r=64"]

    print("### Learning rates on the validation split (seed 0)\n")
    print("| variant | lr of the adapted weights | validation accuracy (n) |")
    print("|---|---:|---:|")
    for _, r in tune.sort_values(["variant", "lr_adapted"]).iterrows():
        print(
            f"| {r['variant']} | {r['lr_adapted']:g} | {100 * r['val_accuracy']:.1f}% ({r['n_val']}) |"
        )

    per_run = []
    for (run_id, variant, seed, lr), g in layers.groupby(
        ["run_id", "variant", "seed", "lr_adapted"]
    ):
        adapted = g[g["adapted"]]
        per_run.append(
            {
                "run_id": run_id,
                "variant": variant,
                "seed": seed,
                "lr": lr,
                "intruders_all": int(g["intruders"].sum()),
                "intruders_adapted": int(adapted["intruders"].sum()),
                "intruders_right_adapted": int(adapted["intruders_right"].sum()),
                "layers_with_intruders": int((adapted["intruders"] > 0).sum()),
                "w_rel_change": adapted["w_rel_change"].mean(),
                "effective_rank": adapted["update_effective_rank"].mean(),
                "stable_rank": adapted["update_stable_rank"].mean(),
                "rank_90": adapted["update_rank_90"].mean(),
                "top_energy": adapted["top_energy"].mean(),
                "bottom_energy": adapted["bottom_energy"].mean(),
                "chance_energy": adapted["chance_energy"].mean(),
                "adapted_layers": len(adapted),
            }
        )
    every = pd.DataFrame(per_run)
    per_run = every.merge(runs, on=["run_id", "variant", "seed"])

    print("\n### Accuracy (test split; 3 seeds, mean and 95% t interval)\n")
    print("| variant | lr | test accuracy | seeds | LoRA − full, paired by seed |")
    print("|---|---:|---:|---|---:|")
    full = per_run[per_run["variant"] == "full"].sort_values("seed")
    for v in order:
        g = per_run[per_run["variant"] == v].sort_values("seed")
        m, lo, hi = _t_interval(100 * g["test_accuracy"])
        seeds = ", ".join(f"{100 * a:.1f}" for a in g["test_accuracy"])
        diff = ""
        if v != "full":
            d = paired_difference(list(100 * g["test_accuracy"]), list(100 * full["test_accuracy"]))
            diff = f"{d.mean:+.2f} [{d.ci_low:+.2f}, {d.ci_high:+.2f}]"
        print(
            f"| {v} | {g['lr_adapted'].iloc[0]:g} | {m:.1f}% [{lo:.1f}, {hi:.1f}] | {seeds} | {diff} |"
        )

    print("\n### Intruders and the update's structure (per run; adapted layers unless said)\n")
    print(
        "| variant | seed | intruders, all layers | intruders, adapted | right, adapted | "
        "layers with intruders | ΔW/W | eff. rank ΔW | stable rank | rank 90% | top-r share | "
        "bottom-r share | random |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in order:
        for _, r in per_run[per_run["variant"] == v].sort_values("seed").iterrows():
            print(
                f"| {v} | {r['seed']} | {r['intruders_all']} | {r['intruders_adapted']} | "
                f"{r['intruders_right_adapted']} | {r['layers_with_intruders']} of {r['adapted_layers']} | "
                f"{r['w_rel_change']:.2e} | {r['effective_rank']:.1f} | {r['stable_rank']:.2f} | "
                f"{r['rank_90']:.1f} | {r['top_energy']:.2e} | {r['bottom_energy']:.2e} | "
                f"{r['chance_energy']:.2e} |"
            )

    print("\n### Intruders against the learning rate (seed 0, the tuning runs; descriptive)\n")
    print("| variant | lr | validation accuracy | intruders, adapted layers | ΔW/W |")
    print("|---|---:|---:|---:|---:|")
    tuned = every.merge(tune[["run_id", "val_accuracy"]], on="run_id")
    for _, r in tuned.sort_values(["variant", "lr"]).iterrows():
        print(
            f"| {r['variant']} | {r['lr']:g} | {100 * r['val_accuracy']:.1f}% | "
            f"{r['intruders_adapted']} | {r['w_rel_change']:.2e} |"
        )

    print("\n### Verdict: does LoRA create more intruders than full fine-tuning here?\n")
    print(
        "| LoRA variant | LoRA − full, intruders in the adapted layers (paired by seed) | wins/losses/ties | verdict |"
    )
    print("|---|---:|---|---|")
    for v in order[1:]:
        g = per_run[per_run["variant"] == v].sort_values("seed")
        d = paired_difference(list(g["intruders_adapted"]), list(full["intruders_adapted"]))
        if d.ties == len(g):
            none = not g["intruders_adapted"].any()
            tie = "not detected in any seed" if none else "equal in every seed"
            verdict = f"inconclusive ({tie})"
        else:
            verdict = three_way(d.ci_low, d.ci_high, direction=1)
        print(
            f"| {v} | {d.mean:+.2f} [{d.ci_low:+.2f}, {d.ci_high:+.2f}] | "
            f"{d.wins}/{d.losses}/{d.ties} | {verdict} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--runs", type=Path, default=Path("runs/what-changed"))
    c.add_argument("--out", type=Path, default=Path("docs/what-changed/data"))
    p = sub.add_parser("precompute", help="only the per-run comparisons of finished runs")
    p.add_argument("--runs", type=Path, default=Path("runs/what-changed"))
    s = sub.add_parser("summarise")
    s.add_argument("--data", type=Path, default=Path("docs/what-changed/data"))
    args = parser.parse_args()
    if args.step == "collect":
        collect(args.runs, args.out)
    elif args.step == "precompute":
        for run_dir in sorted(args.runs.iterdir()):
            if (run_dir / "final.json").is_file():
                _compared(run_dir)
    else:
        summarise(args.data)


if __name__ == "__main__":
    main()
