"""Projected cost of compare-weights on Llama-3-8B base vs Instruct and on a 70B pair, from
CPU seconds measured here per matrix shape.

    OMP_NUM_THREADS=1 python bench/project_compare_cost.py [--rounds 2] [--top 64] [--json out.json]
    python bench/project_compare_cost.py --tiny        # every shape / 32: checks that it runs

What is measured: for every distinct matrix shape of Llama-3-8B, one pair (bf16 as stored, B = A
plus a small change) through :func:`spectral_probe.analysis.compare_weights` with its defaults
(full spectra and angles, intruders and the update's structure; large matrices through blocked
Grams) on one torch thread; the CPU seconds of that call (``time.process_time``, the least of
``--rounds``). CPU time is what the call takes on an idle core; on a busy machine it runs high.

What is projected (and printed as projections, never as measurements):

- the 8B pair: the measured seconds per shape times the number of matrices of that shape;
- the 70B pair: its shapes are larger than any measured, so each comes from a cost model fitted
  to the measured shapes, ``t = c1·m·n·s + c2·s³`` (``s = min(m, n)``: the Gram products and the
  eigensolve), unless ``--measure-70b`` times them too (minutes per shape, ~2 GB per matrix);
  with ``--top K`` that form is a rough guide only (a randomized SVD costs ~ m·n·K);
- wall time on C cores: the CPU seconds divided by C, as compare-weights analyses one layer per
  core (a lower bound: it assumes the layers spread evenly and memory bandwidth keeps up);
- reading the weights (16 GB / 141 GB of bf16 per model) is not included.

16 cores and one H100 are not measured here: the script prints "not measured here" for them;
``bench/gpu_round.sh`` measures the GPU when a device is lent.

Shapes, from the models' public ``config.json`` (meta-llama/Meta-Llama-3-8B and -70B): hidden
4096 / 8192, MLP 14336 / 28672, 32 / 80 blocks, 32 / 64 query heads and 8 key/value heads of
128, vocabulary 128256, untied ``lm_head``. The embedding table is left out, as compare-weights
does by default (``--kinds ...,embedding`` adds it).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import torch

#: (hidden, MLP, blocks, query heads, key/value heads, vocabulary) from the public configs
MODELS = {
    "Llama-3-8B": (4096, 14336, 32, 32, 8, 128256),
    "Llama-3-70B": (8192, 28672, 80, 64, 8, 128256),
}


def shapes(hidden: int, mlp: int, blocks: int, heads: int, kv: int, vocab: int) -> Counter:
    """Matrix shapes (out × in) compare-weights analyses by default, with their counts."""
    d = hidden // heads
    block = [
        (hidden, hidden),  # q_proj
        (kv * d, hidden),  # k_proj
        (kv * d, hidden),  # v_proj
        (hidden, hidden),  # o_proj
        (mlp, hidden),  # gate_proj
        (mlp, hidden),  # up_proj
        (hidden, mlp),  # down_proj
    ]
    counts: Counter = Counter()
    for shape in block:
        counts[shape] += blocks
    counts[(vocab, hidden)] += 1  # lm_head
    return counts


def cpu_seconds(shape: tuple[int, int], rounds: int, top: int | None) -> float:
    """CPU seconds of compare_weights on one bf16 pair of ``shape``, least of ``rounds``."""
    from spectral_probe.analysis import compare_weights
    from spectral_probe.sources import StateDictSource

    g = torch.Generator().manual_seed(0)
    a = (torch.randn(shape, generator=g) * 0.02).to(torch.bfloat16)
    b = (a.float() + 1e-3 * torch.randn(shape, generator=g)).to(torch.bfloat16)
    best = float("inf")
    for _ in range(rounds):
        src_a = StateDictSource({"w.weight": a}, "a")
        src_b = StateDictSource({"w.weight": b}, "b")
        start = time.process_time()
        compare_weights(src_a, src_b, device="cpu", workers=1, top=top)
        best = min(best, time.process_time() - start)
    return best


def fit(measured: dict[tuple[int, int], float]) -> tuple[float, float]:
    """``c1, c2`` of ``t = c1·m·n·s + c2·s³`` by least squares (the 2 × 2 normal equations),
    each kept >= 0."""
    rows = [(m * n * min(m, n), min(m, n) ** 3, t) for (m, n), t in measured.items()]
    sxx = sum(x * x for x, _, _ in rows)
    syy = sum(y * y for _, y, _ in rows)
    sxy = sum(x * y for x, y, _ in rows)
    sxt = sum(x * t for x, _, t in rows)
    syt = sum(y * t for _, y, t in rows)
    det = sxx * syy - sxy * sxy
    if det <= 0:  # one distinct shape ratio: the first term alone
        return sxt / sxx, 0.0
    c1, c2 = (sxt * syy - syt * sxy) / det, (syt * sxx - sxt * sxy) / det
    if c1 < 0 or c2 < 0:  # the nonnegative fit has one term only: take the better one
        one = (sxt / sxx, 0.0)
        two = (0.0, syt / syy)
        err = [sum((c[0] * x + c[1] * y - t) ** 2 for x, y, t in rows) for c in (one, two)]
        return one if err[0] <= err[1] else two
    return c1, c2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--top", type=int, default=None, help="project compare-weights --top K")
    parser.add_argument("--cores", type=int, default=2, help="cores of this machine")
    parser.add_argument("--measure-70b", action="store_true", help="time the 70B shapes too")
    parser.add_argument("--tiny", action="store_true", help="every shape / 32, one round")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scale = 32 if args.tiny else 1
    rounds = 1 if args.tiny else args.rounds
    plans = {
        name: Counter({(m // scale, n // scale): c for (m, n), c in shapes(*cfg).items()})
        for name, cfg in MODELS.items()
    }
    to_measure = set(plans["Llama-3-8B"]) | (
        set(plans["Llama-3-70B"]) if args.measure_70b else set()
    )
    cpu_seconds((64, 32), 1, args.top)  # warm-up: imports and first calls, not timed
    measured = {}
    for shape in sorted(to_measure):
        measured[shape] = cpu_seconds(shape, rounds, args.top)
        print(f"measured {shape[0]:>6} x {shape[1]:<6} {measured[shape]:9.3f} CPU s (one thread)")
    c1, c2 = fit(measured)
    for shape, t in sorted(measured.items()):
        m, n = shape
        model = c1 * m * n * min(m, n) + c2 * min(m, n) ** 3
        print(f"  fit {m:>6} x {n:<6} {model:9.3f} CPU s ({(model - t) / t:+.0%} of measured)")
    report: dict = {"tiny": args.tiny, "top": args.top, "measured_cpu_s": {}, "projected": {}}
    report["measured_cpu_s"] = {f"{m}x{n}": t for (m, n), t in measured.items()}
    report["fit"] = {"c1": c1, "c2": c2}
    what = f"compare-weights{f' --top {args.top}' if args.top else ''}"
    print(f"\nPROJECTIONS of {what} per model pair (bf16; weight reading not included):")
    for name, plan in plans.items():
        cpu = sum(
            count * measured.get(s, c1 * s[0] * s[1] * min(s) + c2 * min(s) ** 3)
            for s, count in plan.items()
        )
        source = "measured shapes" if set(plan) <= set(measured) else "fitted cost model"
        report["projected"][name] = {
            "matrices": sum(plan.values()),
            "cpu_seconds_one_thread": cpu,
            f"wall_seconds_{args.cores}_cores": cpu / args.cores,
            "from": source,
            "16_cores": "not measured here",
            "one_H100": "not measured here",
        }
        print(
            f"  {name} base vs fine-tune ({sum(plan.values())} matrices, from {source}): "
            f"{cpu / 3600:.2f} CPU h on one thread; projected {cpu / args.cores / 3600:.2f} h on "
            f"{args.cores} cores; 16 cores and one H100: not measured here"
        )
    if args.tiny:
        print("(--tiny: every shape / 32; the figures check the script, they project nothing)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)


if __name__ == "__main__":
    main()
