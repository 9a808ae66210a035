"""Benchmark: streaming linear CKA against torch-cka's minibatch CKA and a full-Gram NumPy CKA.

Standalone: ``python bench/bench_similarity.py [--n 10000] [--batch-size 250] [--image-size 64]``.

Features: the block outputs ``blocks.0`` ... ``blocks.6`` and the penultimate features of the
bundled EfficientNet-Lite0 (A) and EfficientNet-Lite1 (B) on the first N Fashion-MNIST test
images (spatial mean pooled: widths 16 ... 320 and 1280), extracted once and cached in
``--cache`` (the extraction is **not** timed). What is timed, each in a fresh process that
loads the cached float32 features first, one thread (``OMP_NUM_THREADS=1``):

* ``streaming``: :class:`spectral_probe.similarity.StreamingCKA` fed the batches of
  ``--batch-size`` rows, then plain and debiased CKA of the 8 matched pairs (one accumulator
  per pair), and of all 8 x 8 pairs (one accumulator for all);
* ``torch-cka``: ``torch_cka.CKA.compare`` (pip ``torch-cka`` 0.21) on the same batches: the
  cached features go through identity modules its hooks read, so its own loop runs: per
  minibatch, the unbiased HSIC of every pair, averaged over minibatches (Nguyen et al.'s
  minibatch CKA: an estimate, not the full-data value); matched pairs one call each, and all
  pairs in one call;
* ``numpy``: the N x N Gram matrices in float64, double centring, :math:`\\langle K_c, L_c
  \\rangle / (\\|K_c\\| \\|L_c\\|)` (plain CKA only), matched pairs.

``--flat 6000 60000`` instead feeds StreamingCKA synthetic features at the same widths (all
64 pairs) for each N and prints the time and the peak memory: flat in N.

Printed: seconds, the ratio to streaming, the peak resident memory of each process above its
resident memory after loading the features, and the largest difference to the NumPy value.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

LAYERS = [f"blocks.{i}" for i in range(7)] + ["penultimate"]


def _rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak() -> None:
    """Reset the process's peak resident memory (VmHWM) to its current value (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")


def _peak_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def extract(args: argparse.Namespace) -> None:
    import torch

    from spectral_probe.data import load_dataset
    from spectral_probe.extract import extract_features
    from spectral_probe.models import load_model

    data = load_dataset("fashion-mnist", "test").subset(list(range(args.n)))
    feats = {}
    for key, spec in (("a", "bundled:efficientnet_lite0"), ("b", "bundled:efficientnet_lite1")):
        t0 = time.perf_counter()
        feats[key] = extract_features(
            load_model(spec),
            data,
            LAYERS,
            batch_size=args.batch_size,
            image_size=args.image_size,
            shuffle=False,
            device="cpu",
        )
        print(f"extracted {spec}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    args.cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(feats, args.cache)


def _batches(feats: dict, layers: list[str], b: int):  # type: ignore[no-untyped-def]
    n = feats[layers[0]].shape[0]
    for start in range(0, n - b + 1, b):
        yield [feats[name][start : start + b] for name in layers]


def _centred_gram(x):  # type: ignore[no-untyped-def]
    """Kornblith et al.'s ``center_gram(gram_linear(x))``, in place on the N x N Gram."""
    g = x @ x.T
    means = g.mean(0)
    means -= means.mean() / 2
    g -= means[:, None]
    g -= means[None, :]
    return g


def child(args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    feats = torch.load(args.cache, weights_only=True)
    fa, fb = feats["a"], feats["b"]
    base = _rss_mib()
    _reset_peak()
    t0 = time.perf_counter()
    values: dict[str, list[float]] = {}
    if args.method == "streaming-matched":
        from spectral_probe.similarity import StreamingCKA

        for layer in LAYERS:
            acc = StreamingCKA(form="features")
            for xs, ys in zip(
                _batches(fa, [layer], args.batch_size), _batches(fb, [layer], args.batch_size)
            ):
                acc.update(xs, ys)
            values.setdefault("cka", []).append(float(acc.cka()[0, 0]))
            values.setdefault("debiased", []).append(float(acc.cka(debiased=True)[0, 0]))
    elif args.method == "streaming-all":
        from spectral_probe.similarity import StreamingCKA

        acc = StreamingCKA(form="features")
        for xs, ys in zip(
            _batches(fa, LAYERS, args.batch_size), _batches(fb, LAYERS, args.batch_size)
        ):
            acc.update(xs, ys)
        values["cka"] = acc.cka().diagonal().tolist()
        values["debiased"] = acc.cka(debiased=True).diagonal().tolist()
    elif args.method.startswith("torch-cka"):
        import warnings

        from torch import nn
        from torch.utils.data import DataLoader, TensorDataset
        from torch_cka import CKA

        class Cached(nn.Module):
            """Identity modules named like the layers: torch-cka's hooks read the cached features."""

            def __init__(self, layers: list[str], widths: list[int]) -> None:
                super().__init__()
                self.names = layers
                self.widths = widths
                self.sites = nn.ModuleList(nn.Identity() for _ in layers)

            def forward(self, x: torch.Tensor) -> None:
                for site, part in zip(self.sites, x.split(self.widths, dim=1)):
                    site(part)

        groups = [[layer] for layer in LAYERS] if args.method == "torch-cka-matched" else [LAYERS]
        for layers in groups:
            ma = Cached(layers, [fa[n].shape[1] for n in layers])
            mb = Cached(layers, [fb[n].shape[1] for n in layers])
            names = [f"sites.{i}" for i in range(len(layers))]
            la = DataLoader(
                TensorDataset(torch.cat([fa[n] for n in layers], 1)), batch_size=args.batch_size
            )
            lb = DataLoader(
                TensorDataset(torch.cat([fb[n] for n in layers], 1)), batch_size=args.batch_size
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cka = CKA(ma, mb, "A", "B", model1_layers=names, model2_layers=names, device="cpu")
                os.environ["TQDM_DISABLE"] = "1"
                cka.compare(la, lb)
            values.setdefault("debiased", []).extend(cka.export()["CKA"].diagonal().tolist())
    elif args.method == "numpy":
        for layer in LAYERS:
            x = fa[layer].numpy().astype(np.float64)
            y = fb[layer].numpy().astype(np.float64)
            k, l = _centred_gram(x), _centred_gram(y)
            values.setdefault("cka", []).append(
                float(k.ravel() @ l.ravel() / (np.linalg.norm(k) * np.linalg.norm(l)))
            )
            del k, l
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mib": _peak_mib() - base, "values": values}


def flat(n: int, batch_size: int) -> dict:
    """Synthetic features at Lite0's widths, all 64 pairs: time and peak memory at ``n`` rows."""
    import torch

    from spectral_probe.similarity import StreamingCKA

    torch.set_num_threads(1)
    widths = [16, 24, 40, 80, 112, 192, 320, 1280]
    gen = torch.Generator().manual_seed(0)
    acc = StreamingCKA(form="features")
    base = _rss_mib()
    _reset_peak()
    t0 = time.perf_counter()
    for _ in range(0, n, batch_size):
        z = torch.randn(batch_size, 8, generator=gen)
        xs = [
            torch.tanh(z @ torch.ones(8, p) * 0.1) + torch.randn(batch_size, p, generator=gen)
            for p in widths
        ]
        ys = [x + 0.5 * torch.randn(x.shape, generator=gen) for x in xs]
        acc.update(xs, ys)
    acc.cka()
    acc.cka(debiased=True)
    return {"n": acc.n, "seconds": time.perf_counter() - t0, "peak_mib": _peak_mib() - base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/spectral_probe_bench/similarity_features.pt")
    )
    parser.add_argument("--method", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--flat",
        type=int,
        nargs="*",
        default=None,
        help="instead: synthetic features at Lite0's widths, all 64 pairs, at these N (e.g. 6000 60000)",
    )
    args = parser.parse_args()
    if args.method == "flat":
        print(json.dumps(flat(args.n, args.batch_size)))
        return
    if args.method is not None:
        print(json.dumps(child(args)))
        return
    env1 = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    if args.flat:
        print(
            f"StreamingCKA, synthetic, Lite0 widths, 8 x 8 pairs, batches of {args.batch_size}, one thread"
        )
        for n in args.flat:
            cmd = [
                sys.executable,
                __file__,
                "--method",
                "flat",
                "--n",
                str(n),
                "--batch-size",
                str(args.batch_size),
            ]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env1).stdout
            res = json.loads(out.strip().splitlines()[-1])
            print(
                f"N = {res['n']:>7}: {res['seconds']:7.1f} s, peak memory {res['peak_mib']:6.0f} MiB above the start"
            )
        return
    if not args.cache.exists():
        extract(args)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }
    results = {}
    for method in (
        "streaming-matched",
        "streaming-all",
        "torch-cka-matched",
        "torch-cka-all",
        "numpy",
    ):
        cmd = [
            sys.executable,
            __file__,
            "--method",
            method,
            "--n",
            str(args.n),
            "--batch-size",
            str(args.batch_size),
            "--cache",
            str(args.cache),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
        results[method] = json.loads(out.strip().splitlines()[-1])
    ref = results["numpy"]["values"]["cka"]
    stream = results["streaming-matched"]["values"]
    print(
        f"linear CKA, N = {args.n}, batches of {args.batch_size}, Lite0 vs Lite1 at {len(LAYERS)} sites, "
        f"one thread ({platform.processor() or platform.machine()}, torch threads 1)"
    )
    print(f"{'method':<20} {'pairs':>6} {'seconds':>9} {'x streaming':>12} {'peak MiB':>9}")
    for method, res in results.items():
        pairs = 64 if method.endswith("-all") else len(LAYERS)
        base = results["streaming-all" if method.endswith("-all") else "streaming-matched"][
            "seconds"
        ]
        print(
            f"{method:<20} {pairs:>6} {res['seconds']:>9.2f} {res['seconds'] / base:>12.2f} {res['peak_mib']:>9.0f}"
        )
    diff = max(abs(a - b) for a, b in zip(stream["cka"], ref))
    print(f"max |streaming - numpy| plain CKA over matched pairs: {diff:.1e}")
    mb = results["torch-cka-matched"]["values"]["debiased"]
    print("matched pairs, debiased CKA: streaming (all N) vs torch-cka minibatch estimate:")
    for layer, a, b, c in zip(LAYERS, stream["debiased"], mb, stream["cka"]):
        print(f"  {layer:<12} streaming {a:.4f}  torch-cka {b:.4f}  (plain {c:.4f})")


if __name__ == "__main__":
    main()
