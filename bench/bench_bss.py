"""Benchmark of the BSS penalty: accuracy against NumPy and speed against torch.svd.

Standalone: ``python bench/bench_bss.py [--device cpu|cuda] [--threads N]``. Runs on CUDA
when available. Everything is measured side by side in one run (rounds interleaved), and
the ratios printed are medians of the same rounds.

Reference formulation (the authors' and tllib's): ``s = torch.svd(F.t())[1]``,
``L = sum(s[-k:] ** 2)``. ``torch.svd`` is deprecated; it appears here only as that
reference (``torch.linalg.svd(F.t(), full_matrices=False)`` is used if it is missing).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from spectral_probe.regularizers import bss_penalty


def reference_svd(f: torch.Tensor, k: int) -> torch.Tensor:
    """``torch.svd(F.t())`` with ``s[-k:]^2``, as in the released BSS code."""
    if hasattr(torch, "svd"):
        s = torch.svd(f.t())[1]
    else:  # pragma: no cover - a torch without the deprecated function
        s = torch.linalg.svd(f.t(), full_matrices=False)[1]
    return s[-k:].pow(2).sum()


def eigvalsh_autograd(f: torch.Tensor, k: int) -> torch.Tensor:
    """The same Gram route through plain autograd (full b^2 d backward), for comparison."""
    x = f.double()
    return torch.linalg.eigvalsh(x @ x.T)[:k].sum().float()


def feature_cases(b: int, d: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Feature matrices from benign to ill-conditioned, float32."""
    relu = torch.relu(torch.randn(b, d, generator=gen) * 0.3 + 0.4)  # pooled post-ReLU-like
    low = torch.relu(
        torch.randn(b, 64, generator=gen) @ torch.randn(64, d, generator=gen) / 8 + 0.5
    )
    near = torch.randn(b, d, generator=gen)
    near[-1] = near[0] + 1e-3 * torch.randn(d, generator=gen)
    dup = relu.clone()
    dup[-1] = dup[0]
    u, _ = torch.linalg.qr(torch.randn(b, b, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(d, b, generator=gen, dtype=torch.float64))
    cond = ((u * torch.logspace(2, -3, b, dtype=torch.float64)) @ v.T).float()
    return {
        "gaussian": torch.randn(b, d, generator=gen),
        "relu (pooled-like)": relu,
        "relu low-rank + mean": low,
        "near-duplicate row": near,
        "duplicate row (rank b-1)": dup,
        "sigma 1e2..1e-3": cond,
    }


def accuracy(b: int, d: int, k: int, device: torch.device) -> None:
    gen = torch.Generator().manual_seed(0)
    print(
        f"\n## Accuracy: sum of the {k} smallest sigma^2 of F ({b} x {d}, float32) "
        "vs NumPy float64 SVD"
    )
    print("abs err / sigma_max^2   (relative error in brackets)")
    methods: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "auto (default)": lambda f: bss_penalty(f, k),
        "gram float64": lambda f: bss_penalty(f.double(), k, precision="float64"),
        "gram float32": lambda f: bss_penalty(f, k, precision="float32"),
        "torch.svd float32": lambda f: reference_svd(f, k),
    }
    print(f"{'case':28s}" + "".join(f"{m:>26s}" for m in methods))
    for name, f in feature_cases(b, d, gen).items():
        s = np.linalg.svd(f.double().numpy(), compute_uv=False)
        want = float(np.sort(s**2)[:k].sum())
        smax2 = float(s.max() ** 2)
        row = f"{name:28s}"
        for fn in methods.values():
            got = float(fn(f.to(device)))
            rel = f"{abs(got - want) / want:7.1e}" if want > 1e-12 * smax2 else "  (~0) "
            row += f"{abs(got - want) / smax2:>15.1e} ({rel})"
        print(row)


def timed(fn: Callable[[], None], device: torch.device, inner: int) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / inner


def compare(
    fns: dict[str, Callable[[], None]], device: torch.device, rounds: int, inner: int
) -> dict[str, tuple[float, float]]:
    """``{name: (median, min)}`` seconds per call over interleaved rounds."""
    for fn in fns.values():  # warm-up
        timed(fn, device, 3)
    samples: dict[str, list[float]] = {n: [] for n in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(timed(fn, device, inner))
    return {n: (statistics.median(v), min(v)) for n, v in samples.items()}


def speed(b: int, d: int, k: int, device: torch.device, rounds: int) -> None:
    print(f"\n## Speed: BSS forward + backward, F {b} x {d} float32 on {device}, k={k}")
    f = torch.relu(torch.randn(b, d, device=device) * 0.3 + 0.4).requires_grad_(True)

    def run(loss_fn: Callable[[torch.Tensor, int], torch.Tensor]) -> Callable[[], None]:
        def go() -> None:
            f.grad = None
            loss_fn(f, k).backward()  # type: ignore[call-arg]

        return go

    fns = {
        "reference torch.svd(F.t())": run(reference_svd),
        "bss_penalty auto (default)": run(bss_penalty),
        "bss_penalty float64": run(lambda x, k: bss_penalty(x, k, precision="float64")),
        "bss_penalty float32": run(lambda x, k: bss_penalty(x, k, precision="float32")),
        "gram float64 + eigvalsh autograd": run(eigvalsh_autograd),
    }
    if device.type == "cuda":
        from spectral_probe.spectral import eigen

        def on_gpu(x: torch.Tensor, k: int) -> torch.Tensor:
            old, eigen.CUDA_EIGH_ON_CPU_MAX_N = eigen.CUDA_EIGH_ON_CPU_MAX_N, 0
            try:
                return bss_penalty(x, k)
            finally:
                eigen.CUDA_EIGH_ON_CPU_MAX_N = old

        fns["bss_penalty auto, eigh on the GPU"] = run(on_gpu)
    res = compare(fns, device, rounds, inner=20)
    ref_med, ref_min = res["reference torch.svd(F.t())"]
    print(f"{'':36s} {'median':>10s} {'min':>10s}   speed-up vs reference (median / min)")
    for name, (med, low) in res.items():
        print(
            f"{name:36s} {med * 1e6:8.1f}us {low * 1e6:8.1f}us   "
            f"{ref_med / med:5.2f}x / {ref_min / low:5.2f}x"
        )


def training_step(device: torch.device, rounds: int) -> None:
    import torchvision

    if device.type == "cuda":
        arch, size, b = "resnet50", 224, 48
    else:
        arch, size, b = "resnet18", 64, 48
    print(f"\n## Training step with and without BSS: {arch}, batch {b}, {size}x{size}, {device}")
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=100).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(b, 3, size, size, device=device)
    y = torch.randint(0, 100, (b,), device=device)
    feats: dict[str, torch.Tensor] = {}
    model.fc.register_forward_pre_hook(lambda m, a: feats.__setitem__("f", a[0]))

    def run(with_bss: bool) -> Callable[[], None]:
        def go() -> None:
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x), y)
            if with_bss:
                loss = loss + 1e-3 * bss_penalty(feats["f"], 1)
            loss.backward()
            opt.step()

        return go

    res = compare({"without": run(False), "with BSS": run(True)}, device, rounds, inner=2)
    (wo, wo_min), (wi, wi_min) = res["without"], res["with BSS"]
    print(f"step without BSS {wo * 1e3:8.1f} ms (min {wo_min * 1e3:.1f})")
    print(f"step with BSS    {wi * 1e3:8.1f} ms (min {wi_min * 1e3:.1f})   ratio {wi / wo:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--b", type=int, default=48)
    parser.add_argument("--d", type=int, default=2048)
    parser.add_argument("--k", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--no-train-step", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    print(
        f"# bench_bss: torch {torch.__version__}, {device} ({name}), "
        f"{torch.get_num_threads()} CPU threads"
    )
    accuracy(args.b, args.d, args.k, device)
    speed(args.b, args.d, args.k, device, args.rounds)
    if not args.no_train_step:
        training_step(device, max(3, args.rounds // 6))


if __name__ == "__main__":
    main()
