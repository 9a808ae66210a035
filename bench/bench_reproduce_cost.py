"""CPU cost of the 'reproduce' sweep (docs/reproduction.md): CPU seconds per iteration of
EfficientNet-Lite0 + BSS on Fashion-MNIST at one torch thread, from two short runs (the
difference of N2 and N1 iterations removes start-up and evaluation), scaled to the sweep.

    OMP_NUM_THREADS=1 python bench/bench_reproduce_cost.py [--sizes 64 96] [--n1 10] [--n2 40]

CPU time (not wall time) is what a run would take on an idle core; on a busy machine it is
an overestimate (cache and SMT contention), so the printed hours are an upper-side guess.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch


def cpu_seconds(size: int, iterations: int, root: str) -> float:
    from spectral_probe.training import FinetuneConfig, finetune

    cfg = FinetuneConfig(
        model="bundled:efficientnet_lite0",
        data="fashion-mnist",
        method="l2+bss",
        rate="5%",
        seed=0,
        preset="demo",
        iterations=iterations,
        image_size=size,
        resize=int(size * 1.14),
        eval_max=500,
        log_every=10,
        device="cpu",
    )
    start = time.process_time()
    finetune(cfg, f"{root}/run_{size}_{iterations}")
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96])
    parser.add_argument("--n1", type=int, default=10)
    parser.add_argument("--n2", type=int, default=40)
    parser.add_argument(
        "--iterations", type=int, default=2500, help="iterations per run of the sweep"
    )
    parser.add_argument("--runs", type=int, default=24, help="runs of the sweep")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as root:
        for size in args.sizes:
            a, b = cpu_seconds(size, args.n1, root), cpu_seconds(size, args.n2, root)
            per_it = (b - a) / (args.n2 - args.n1)
            hours = args.runs * args.iterations * per_it / args.cores / 3600
            print(
                f"{size:4d} px: {per_it:.3f} CPU s/iteration -> {args.runs} runs x {args.iterations} iterations "
                f"on {args.cores} cores: {hours:.2f} h of training (plus one test pass per run)"
            )


if __name__ == "__main__":
    main()
