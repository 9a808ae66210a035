"""A LASER truncation curve: dev accuracy of a fine-tuned text classifier against the kept rank.

For each named matrix W of the run's model and each ``keep`` fraction, W alone is replaced by
its best rank-k approximation (:func:`spectral_probe.analysis.truncate.low_rank`, float64
SVD, k = ``kept_rank(keep, m, n)``: the computation ``spectral-probe truncate`` writes), the
GLUE-format dev split is classified, and W is put back. Each cell's accuracy is compared with
the untouched model's on the same examples: the paired difference and its 95% interval
(normal approximation over examples, d̄ ± 1.96 sd(d)/√n). The untouched accuracy must equal
the run's own ``final.json`` (checked).

    python scripts/laser_curve.py runs/select-layers-minilm/<run id> /tmp/fortunes-sst2/SST-2 \\
        --matrix encoder.layer.5.output.dense --keep 0.5 0.25 0.1 0.05 --out curve.csv
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from spectral_probe.analysis.truncate import kept_rank, low_rank
from spectral_probe.data import load_dataset
from spectral_probe.training import TokenizeCollate, load_run


@torch.no_grad()
def correct(model: torch.nn.Module, batches: list[tuple[dict, torch.Tensor]]) -> np.ndarray:
    """Per-example correctness (1/0) of ``model`` on the tokenised batches."""
    out = [(model(**x).argmax(-1) == y).numpy() for x, y in batches]
    return np.concatenate(out).astype(float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished text-classification run directory")
    parser.add_argument("data", help="the GLUE SST-2-format folder the run was trained on")
    parser.add_argument("--matrix", action="append", required=True, help="module name, repeatable")
    parser.add_argument("--keep", type=float, nargs="+", default=[0.5, 0.25, 0.1, 0.05])
    parser.add_argument("--out", type=Path, required=True, help="CSV to write")
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = load_run(args.run)
    loaded = run.load_model()
    model = loaded.model.eval()
    max_length = int(run.config.task_options.get("max_length", 128))
    collate = TokenizeCollate(loaded.tokenizer, max_length)
    dev = load_dataset(f"glue-sst2:{args.data}", "dev")
    items = [dev[i] for i in range(len(dev))]
    batches = [collate(items[i : i + 64]) for i in range(0, len(items), 64)]
    base = correct(model, batches)
    reported = run.final["evals"]["test"]["accuracy"]
    if not math.isclose(base.mean(), reported, abs_tol=1e-9):
        raise SystemExit(f"expected the run's dev accuracy {reported}, found {base.mean()}")
    params = dict(model.named_parameters())
    rows = [{"matrix": "(none)", "keep": 1.0, "rank": None, "full_rank": None,
             "accuracy": base.mean(), "diff": 0.0, "low": 0.0, "high": 0.0}]  # fmt: skip
    for name in args.matrix:
        weight = params[f"{name}.weight"]
        saved = weight.detach().clone()
        m, n = weight.shape
        for keep in args.keep:
            k = kept_rank(keep, m, n)
            with torch.no_grad():
                weight.copy_(low_rank(saved, k).to(weight.dtype))
            hits = correct(model, batches)
            d = hits - base
            half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
            rows.append({"matrix": name, "keep": keep, "rank": k, "full_rank": min(m, n),
                         "accuracy": hits.mean(), "diff": d.mean(),
                         "low": d.mean() - half, "high": d.mean() + half})  # fmt: skip
            print(f"{name} keep {keep} (rank {k}/{min(m, n)}): {hits.mean():.4f} "
                  f"({d.mean():+.4f} [{d.mean() - half:+.4f}, {d.mean() + half:+.4f}])")  # fmt: skip
            with torch.no_grad():
                weight.copy_(saved)
    frame = pd.DataFrame(rows)
    frame.insert(0, "run", run.run_id)
    frame.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {args.out} (untouched: {base.mean():.4f} on {len(base)} dev examples)")


if __name__ == "__main__":
    main()
