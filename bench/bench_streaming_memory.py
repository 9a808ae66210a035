"""Benchmark: the dataset-level spectrum's memory stays flat as the number of samples N grows.

Standalone: ``python bench/bench_streaming_memory.py [--source model|synthetic] [--sizes 1000
10000 60000] [--device cpu|cuda] [--image-size N]``.

Each N runs in a fresh process (peak resident memory is a per-process high-water mark):

* ``--source model`` (default): the real pipeline, ``feature_spectrum`` of the bundled
  EfficientNet-Lite0 on N Fashion-MNIST training images (N / 10 per class; 60,000 is all of
  them), batches of 48, per-batch spectra and the streaming ``d x d`` Gram (d = 1280);
* ``--source synthetic``: the same accumulators fed random ``48 x d`` feature matrices, which
  isolates them from the model (quick on a CPU).

Printed per N: peak RSS and, on CUDA, peak allocated GPU memory, both as measured and as the
growth over the same process just before the loop (model and data loaded); the Gram state
(``d^2 + d`` float64) and, for contrast, what holding all N features would take (``N d``
float32) and their SVD; time and samples per second. The full 60,000 x 28 x 28 uint8 training
set is loaded in every run, so the baseline is the same for every N.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time

import torch


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> dict[str, float]:
    from spectral_probe.analysis import BatchSpectra, StreamingGram, feature_spectrum

    device = torch.device(args.device)
    n = args.n
    if args.source == "synthetic":
        d, b = args.dim, args.batch_size
        gen = torch.Generator(device="cpu").manual_seed(0)
        pool = [torch.rand(b, d, generator=gen).to(device) for _ in range(8)]
        before, t0 = _rss_mib(), time.perf_counter()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base_gpu = torch.cuda.memory_allocated(device)
        acc, gram = BatchSpectra(), StreamingGram()
        for i in range(n // b):
            f = pool[i % len(pool)]
            acc.update(f)
            gram.update(f)
        acc.values()
        gram.eigenvalues()
    else:
        from spectral_probe.data import load_dataset
        from spectral_probe.models import load_model

        loaded = load_model(args.model)
        data = load_dataset(args.data, "train")
        d = 1280
        # warm up (allocator, kernels) on a few batches so the baseline includes them
        feature_spectrum(
            loaded,
            data,
            batch_size=args.batch_size,
            max_batches=2,
            image_size=args.image_size,
            device=device,
        )
        before, t0 = _rss_mib(), time.perf_counter()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
            base_gpu = torch.cuda.memory_allocated(device)
        res = feature_spectrum(
            loaded,
            data,
            rate=str(n // 10),
            batch_size=args.batch_size,
            image_size=args.image_size,
            device=device,
        )
        assert int(res.summary["dataset_n"].iloc[0]) == (n // args.batch_size) * args.batch_size
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    out = {
        "n": n,
        "rss_before_mib": before,
        "peak_rss_mib": _peak_rss_mib(),
        "seconds": seconds,
        "samples_per_s": (n // args.batch_size) * args.batch_size / seconds,
        "gram_mib": (d * d + d) * 8 / 2**20,
        "all_features_mib": n * d * 4 / 2**20,
    }
    if device.type == "cuda":
        out["gpu_peak_growth_mib"] = (torch.cuda.max_memory_allocated(device) - base_gpu) / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["model", "synthetic"], default="model")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 60000])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", default="bundled:efficientnet_lite0")
    parser.add_argument(
        "--data", default="fashion-mnist", help="a data spec with 60,000 training images"
    )
    parser.add_argument(
        "--image-size", type=int, default=None, help="default: the model's own (224)"
    )
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument("--dim", type=int, default=1280, help="synthetic feature width")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.n is not None:
        print(json.dumps(child(args)))
        return
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, device {args.device}, source {args.source}"
        + (
            f", {args.model} at {args.image_size or 'its own'} px"
            if args.source == "model"
            else f", d = {args.dim}"
        )
    )
    rows = []
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--n", str(n), *sys.argv[1:]]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:])
            raise SystemExit(done.returncode)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    gpu = "gpu_peak_growth_mib" in rows[0]
    head = f"{'N':>7} {'peak RSS':>10} {'RSS growth':>11}" + (f" {'GPU growth':>11}" if gpu else "")
    head += f" {'Gram state':>11} {'all N features':>15} {'seconds':>8} {'samples/s':>10}"
    print(head)
    for r in rows:
        line = f"{r['n']:>7} {r['peak_rss_mib']:>8.0f} M {r['peak_rss_mib'] - r['rss_before_mib']:>9.0f} M"
        if gpu:
            line += f" {r['gpu_peak_growth_mib']:>9.1f} M"
        line += f" {r['gram_mib']:>9.1f} M {r['all_features_mib']:>13.0f} M {r['seconds']:>8.1f} {r['samples_per_s']:>10.0f}"
        print(line)


if __name__ == "__main__":
    main()
