"""Benchmark: the spectrum of a LoRA update from its factors against a dense SVD.

Issue target: for :math:`\\Delta W = s\\,BA` of shape 4096 x 4096 at r = 16, the factored
spectrum (:func:`spectral_probe.spectral.factored_svd`: QR of the factors, SVD of the r x r
core, float64) in <= 10 ms on the CPU, with every sigma within 1e-6 relative of a dense
``torch.linalg.svdvals`` of the formed float64 product. Both are timed side by side in this
one run (interleaved rounds, medians); forming the product is excluded from the dense timing.

Also printed: the leading k triplets of W0 + s*B*A through ``top_singular`` (randomized, the
sum never formed) against ``torch.linalg.svdvals`` of the formed sum, with the residual bound.

Run: ``python bench/bench_lowrank.py [--size 4096] [--rank 16] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch


def _median_seconds(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from spectral_probe.spectral import LowRankSum, factored_svd, top_singular

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--top", type=int, default=16, help="k of the W0 + sBA part (0 skips it)")
    parser.add_argument("--niter", type=int, default=4, help="power iterations of the top-k part")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    m = n = args.size
    r = args.rank
    gen = torch.Generator().manual_seed(0)
    # what an adapter stores: float32 factors; kaiming-like A, a trained B of modest norm
    b = torch.randn(m, r, generator=gen) * 0.01
    a = torch.randn(r, n, generator=gen) / n**0.5
    scale = 32 / r  # lora_alpha = 32

    dense = (scale * (b.double() @ a.double())).contiguous()
    factored_svd(b, a, scale=scale)  # warm-up (first QR/SVD call, thread pool)
    torch.linalg.svdvals(dense[:64, :64])
    fact_times, dense_times = [], []
    for _ in range(args.rounds):  # interleaved rounds
        fact_times.append(_median_seconds(lambda: factored_svd(b, a, scale=scale), 3))
        dense_times.append(_median_seconds(lambda: torch.linalg.svdvals(dense), 1))
    s_fact = factored_svd(b, a, scale=scale).S
    s_dense = torch.linalg.svdvals(dense)[:r]
    rel = float(((s_fact - s_dense).abs() / s_dense).max())
    t_fact, t_dense = statistics.median(fact_times), statistics.median(dense_times)
    print(
        f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"update {m} x {n}, r = {r}, float64")
    print(f"  factored_svd           {t_fact * 1e3:9.2f} ms   (target <= 10 ms)")
    print(f"  dense svdvals          {t_dense * 1e3:9.2f} ms")
    print(f"  ratio factored / dense {t_fact / t_dense:9.5f}")
    print(f"  max relative sigma difference {rel:.2e}   (target <= 1e-6)")

    if args.top:
        w0 = torch.randn(m, n, generator=gen) / n**0.5
        op = LowRankSum(w0, b, a, scale=scale)
        t_top = _median_seconds(
            lambda: top_singular(op, args.top, method="randomized", niter=args.niter), 1
        )
        out = top_singular(op, args.top, method="randomized", niter=args.niter)
        full = op.dense()
        t_full = _median_seconds(lambda: torch.linalg.svdvals(full), 1)
        ref = torch.linalg.svdvals(full)[: args.top]
        rel_top = float(((out.S - ref).abs() / ref).max())
        print(f"W0 + sBA, top {args.top} (randomized, niter={args.niter}, sum never formed)")
        print(f"  top_singular           {t_top * 1e3:9.2f} ms")
        print(f"  dense svdvals of sum   {t_full * 1e3:9.2f} ms")
        print(f"  ratio                  {t_top / t_full:9.5f}")
        print(
            f"  max relative sigma difference {rel_top:.2e}, largest bound {float(out.bound.max()):.2e}"
        )


if __name__ == "__main__":
    main()
