"""Benchmark: the full compare-weights analysis of a ResNet-50 pair vs plain PyTorch and WeightWatcher.

The pair: a randomly initialised torchvision ResNet-50 and a copy perturbed by 1e-3 of each
tensor's standard deviation; all 54 Conv2d/Linear layers. Model construction is excluded from
every timing. Printed, measured side by side in this one run:

* plain float64 loop: ``torch.linalg.svd`` of both unfolded matrices per layer plus |cos|;
* plain float32 loop (and how far its cosines are from float64's);
* WeightWatcher ``analyze()`` of ONE model (no angles), if ``weightwatcher`` is installed;
* ``spectral_probe.analysis.compare_weights`` (float64: spectra, angles, Wedin bounds,
  clusters, principal angles), on CPU and, when CUDA is available, on the GPU;
* the largest differences between compare_weights and the plain float64 loop;
* peak extra memory of each approach (a fresh subprocess each, ``ru_maxrss`` / CUDA peak).

Run: ``python bench/bench_compare_weights.py [--repeats 3] [--no-ww]``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import statistics
import time
import warnings
from collections.abc import Callable
from datetime import date

import torch


def make_pair(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module]:
    import torchvision

    torch.manual_seed(seed)
    a = torchvision.models.resnet50()
    b = torchvision.models.resnet50()
    b.load_state_dict(a.state_dict())
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in b.parameters():
            p.add_(1e-3 * p.std() * torch.randn(p.shape, generator=gen))
    return a.eval(), b.eval()


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [
        m.weight.detach().reshape(m.weight.shape[0], -1)
        for m in model.modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]


def plain_loop(
    a: torch.nn.Module, b: torch.nn.Module, dtype: torch.dtype, device: str = "cpu"
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The plain PyTorch way: full SVD of both matrices, then index-matched |cos|."""
    out = []
    for wa, wb in zip(weights(a), weights(b)):
        ua, sa, _ = torch.linalg.svd(wa.to(device, dtype), full_matrices=False)
        ub, sb, _ = torch.linalg.svd(wb.to(device, dtype), full_matrices=False)
        out.append((sa, sb, (ua * ub).sum(0).abs()))
    return out


def ours(a: torch.nn.Module, b: torch.nn.Module, device: str = "cpu"):  # type: ignore[no-untyped-def]
    from spectral_probe.analysis import compare_weights

    return compare_weights(a, b, device=device)


def weightwatcher_one(a: torch.nn.Module) -> object:
    import logging

    import weightwatcher as ww

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ww.WeightWatcher(model=a).analyze()


def timeit(fn: Callable[[], object], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _peak_worker(name: str, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    import threading

    a, b = make_pair()
    fns = {
        "plain float64 SVD loop": lambda: plain_loop(a, b, torch.float64),
        "compare_weights (cpu)": lambda: ours(a, b, "cpu"),
        "WeightWatcher analyze (1 model)": lambda: weightwatcher_one(a),
    }
    fns[name]()  # warm-up: imports and allocator pools are not the method's memory
    before = _rss_mib()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mib())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    fns[name]()
    done.set()
    thread.join()
    queue.put(max(peak[0], _rss_mib()) - before)


def peak_memory(name: str) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_peak_worker, args=(name, queue))
    proc.start()
    value = queue.get()
    proc.join()
    return float(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ww", action="store_true", help="skip WeightWatcher")
    args = parser.parse_args()

    have_ww = not args.no_ww
    if have_ww:
        try:
            import weightwatcher  # noqa: F401
        except ImportError:
            have_ww = False

    a, b = make_pair()
    # warm-up (imports, allocator, MKL initialisation)
    ours(a, b, "cpu")
    plain_loop(a, b, torch.float64)

    results: dict[str, list[float]] = {}
    for _ in range(args.repeats):  # interleave so machine noise hits every contender alike
        results.setdefault("plain float64 SVD loop", []).extend(
            timeit(lambda: plain_loop(a, b, torch.float64), 1)
        )
        results.setdefault("plain float32 SVD loop", []).extend(
            timeit(lambda: plain_loop(a, b, torch.float32), 1)
        )
        results.setdefault("compare_weights (cpu)", []).extend(timeit(lambda: ours(a, b, "cpu"), 1))
        if have_ww:
            results.setdefault("WeightWatcher analyze (1 model)", []).extend(
                timeit(lambda: weightwatcher_one(a), 1)
            )
    if torch.cuda.is_available():
        plain_loop(a, b, torch.float64, "cuda")
        ours(a, b, "cuda")
        torch.cuda.reset_peak_memory_stats()
        results["compare_weights (cuda)"] = timeit(lambda: ours(a, b, "cuda"), args.repeats)
        gpu_peak = torch.cuda.max_memory_allocated() / 2**20
        results["plain float64 SVD loop (cuda)"] = timeit(
            lambda: plain_loop(a, b, torch.float64, "cuda"), args.repeats
        )

    med = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"# compare-weights benchmark, {date.today()}, {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    )
    print(
        "ResNet-50 pair (random init vs 1e-3 perturbed copy), 54 Conv2d/Linear layers, load excluded"
    )
    print(f"{'method':36s} {'median s':>9s} {'min s':>8s} {'max s':>8s}")
    for k, v in results.items():
        print(f"{k:36s} {med[k]:9.3f} {min(v):8.3f} {max(v):8.3f}")

    ref = plain_loop(a, b, torch.float64)
    f32 = plain_loop(a, b, torch.float32)
    res = ours(a, b, "cpu")
    sv_err, cos_err, cos32_err = 0.0, 0.0, 0.0
    for (sa, _, cos), (_, _, c32), (_, rows) in zip(
        ref, f32, res.angles.groupby("layer", sort=False)
    ):
        got_s = torch.tensor(rows["sigma_a"].to_numpy())
        got_c = torch.tensor(rows["cos"].to_numpy())
        sv_err = max(sv_err, float(((got_s - sa) / sa[0]).abs().max()))
        cos_err = max(cos_err, float((got_c - cos).abs().max()))
        cos32_err = max(cos32_err, float((c32.double() - cos).abs().max()))
    print()
    print("ratios (lower is faster):")
    print(
        f"  compare_weights / plain float64 loop  = {med['compare_weights (cpu)'] / med['plain float64 SVD loop']:.3f}  (goal <= 0.25)"
    )
    if have_ww:
        print(
            f"  compare_weights / WeightWatcher (1)   = {med['compare_weights (cpu)'] / med['WeightWatcher analyze (1 model)']:.3f}  (goal <= 0.6)"
        )
    if torch.cuda.is_available():
        print(
            f"  compare_weights on GPU: {med['compare_weights (cuda)']:.3f} s (goal < 0.5 s), peak GPU memory {gpu_peak:.0f} MiB"
        )
        print(
            f"  compare_weights / plain float64 loop, both on GPU = "
            f"{med['compare_weights (cuda)'] / med['plain float64 SVD loop (cuda)']:.3f}"
        )
        gpu = ours(a, b, "cuda").angles
        cpu = res.angles
        print(
            f"  GPU vs CPU results: max |sigma| diff / sigma_1 = "
            f"{float(((gpu['sigma_a'] - cpu['sigma_a']).abs() / cpu.groupby('layer')['sigma_a'].transform('max')).max()):.1e}, "
            f"max |cos| diff = {float((gpu['cos'] - cpu['cos']).abs().max()):.1e}"
        )
    print()
    print("accuracy against the plain float64 SVD loop:")
    print(f"  max |sigma - ref| / sigma_1          = {sv_err:.1e}")
    print(f"  max | |cos| - ref |  (compare_weights) = {cos_err:.1e}")
    print(f"  max | |cos| - ref |  (float32 SVD)     = {cos32_err:.1e}")
    print()
    print(
        "peak extra resident memory while running (fresh process each, after a warm-up run; MiB):"
    )
    names = ["plain float64 SVD loop", "compare_weights (cpu)"] + (
        ["WeightWatcher analyze (1 model)"] if have_ww else []
    )
    for name in names:
        print(f"  {name:36s} {peak_memory(name):8.0f}")


if __name__ == "__main__":
    main()
