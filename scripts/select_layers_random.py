"""The random arm of docs/select-layers.md: as many layers per weight type, chosen at random.

Reads the ``scores.csv`` that ``select-layers --out DIR`` wrote, replaces every score by a
seeded uniform random number and applies the same rule (:func:`select_top`: the top P% of
each type), so each random selection has exactly as many modules of each type as the scored
one; writes ``random-s{SEED}.yaml`` with the same writer (``unfrozen_parameters_yaml``).

    python scripts/select_layers_random.py docs/select-layers/minilm-top25 --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from spectral_probe.analysis.select import select_top


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("selection", type=Path, help="a select-layers --out folder")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = parser.parse_args()
    frame = pd.read_csv(args.selection / "scores.csv")
    meta = json.loads((args.selection / "results.json").read_text())["meta"]
    percent = float(meta["options"]["top_percent"])
    scored = select_top(frame, percent, higher_is_signal=bool(meta["higher_is_signal"]))
    counts = scored.selected().groupby("type").size().to_dict()
    for seed in args.seeds:
        rng = np.random.default_rng(seed)
        shuffled = frame.assign(score=rng.random(len(frame)))
        chosen = select_top(shuffled, percent, meta={"score": f"uniform random, seed {seed}"})
        assert chosen.selected().groupby("type").size().to_dict() == counts
        path = args.selection / f"random-s{seed}.yaml"
        path.write_text(chosen.unfrozen_parameters_yaml())
        names = ", ".join(chosen.selected()["name"])
        print(f"{path}: {names}")


if __name__ == "__main__":
    main()
