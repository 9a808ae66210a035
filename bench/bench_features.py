"""Benchmark of feature extraction: throughput against a bare ``model(x)`` loop.

Standalone: ``python bench/bench_features.py [--model SPEC] [--data SPEC] [--image-size N]
[--batches N] [--rounds N] [--device cpu|cuda|all]``. Runs on CPU, and on CUDA when present
(``--device all``, the default).

Three loops go over the same batches (same loader, same preprocessing on the same device,
same autocast and memory format):

* ``bare``: ``model(x)`` under ``torch.inference_mode``, the output discarded;
* ``extract``: :class:`~spectral_probe.extract.FeatureExtractor` (hooks, early stop before
  the head, pooling, float32 features);
* ``spectra``: ``extract`` plus what :func:`~spectral_probe.analysis.feature_spectrum` does with
  each batch (float64 Gram, batched eigensolves, the streaming ``d x d`` dataset Gram).

Rounds are interleaved (bare, extract, spectra, bare, ...) and the ratios are medians over
the same rounds: ``ratio = time(bare) / time(other)``, i.e. throughput relative to the bare
loop (>= 0.95 is the target for ``extract``). On CUDA the bare loop of plain float32 NCHW is
also timed, to show what AMP + channels_last buy.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from spectral_probe.analysis import BatchSpectra, StreamingGram
from spectral_probe.data import load_dataset
from spectral_probe.extract import FeatureExtractor, make_feature_loader
from spectral_probe.models import load_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_device(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    import copy

    loaded = load_model(args.model)
    dataset = load_dataset(args.data, args.split)
    ref = copy.deepcopy(loaded.model).to(device)  # plain float32 NCHW twin, no hooks (CUDA only)
    fx = FeatureExtractor(loaded, device=device)
    loader = make_feature_loader(
        loaded,
        dataset,
        args.batch_size,
        device=device,
        image_size=args.image_size,
        max_batches=args.batches,
        channels_last=fx.channels_last,
    )
    # the batches are materialised once on the device, so the main loops compare the model
    # side alone (a stricter test: loading time would dilute any overhead); the "+load"
    # loops include the loader and the on-device transform
    batches = [x for x, _ in loader]
    plain = [x.contiguous() for x in batches]
    model = fx.model

    def bare() -> None:
        with torch.inference_mode(), fx.autocast():
            for x in batches:
                model(x)

    def bare_fp32() -> None:
        with torch.inference_mode():
            for x in plain:
                ref(x)

    def extract() -> None:
        for x in batches:
            fx(x)

    def spectra(source: object = None) -> None:
        acc, gram = BatchSpectra(), StreamingGram()
        for x in batches if source is None else (x for x, _ in loader):
            f = fx(x)["penultimate"]
            acc.update(f)
            gram.update(f)
        acc.values()
        gram.eigenvalues()

    def bare_load() -> None:
        with torch.inference_mode(), fx.autocast():
            for x, _ in loader:
                model(x)

    loops: dict[str, Callable[[], None]] = {
        "bare": bare,
        "extract": extract,
        "spectra": spectra,
        "bare+load": bare_load,
        "spectra+load": lambda: spectra(loader),
    }
    if device.type == "cuda":
        loops["bare fp32 NCHW"] = bare_fp32
    for fn in loops.values():  # warm-up (cuDNN autotuning, allocator, threads)
        fn()
    _sync(device)
    times: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, fn in loops.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    fx.close()
    n = len(batches) * args.batch_size
    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = {name: times["bare+load" if name.endswith("+load") else "bare"] for name in times}
    ratios = {
        name: statistics.median(b / t for b, t in zip(base[name], ts)) for name, ts in times.items()
    }
    print(
        f"\n{device.type}: {args.model}, {args.data}/{args.split}, {len(batches)} batches of {args.batch_size} "
        f"at {loader.transform.size if loader.transform is not None else '?'} px, amp={fx.amp}, "
        f"channels_last={fx.channels_last}, {args.rounds} interleaved rounds"
    )
    print(
        f"{'loop':<16}{'median s':>10}{'images/s':>12}{'throughput vs bare':>20}   (+load: vs bare+load)"
    )
    for name in loops:
        print(f"{name:<16}{med[name]:>10.3f}{n / med[name]:>12.1f}{ratios[name]:>20.3f}")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="bundled:efficientnet_lite0")
    parser.add_argument("--data", default="fashion-mnist")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=48)
    parser.add_argument(
        "--image-size", type=int, default=None, help="default: the model's own (224)"
    )
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="all", choices=["all", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, python {platform.python_version()}, {torch.get_num_threads()} CPU threads"
    )
    devices = []
    if args.device in ("all", "cpu"):
        devices.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        print(f"GPU: {torch.cuda.get_device_name()}")
        devices.append(torch.device("cuda"))
    for dev in devices:
        run_device(args, dev)


if __name__ == "__main__":
    main()
