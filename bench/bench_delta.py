"""Benchmark of DELTA's channel attention: batched ablation against one forward per channel.

Standalone: ``python bench/bench_delta.py [--device cpu|cuda] [--arch resnet18] ...``. Runs
on CUDA when available (then ResNet-50 at 224 px by default). The per-channel reference (the
DELTA authors' way: one full forward per zeroed channel, autograd on) is timed on the first
``--loop-channels`` channels and scaled to all of them (its cost is linear in the channels);
both results are compared on those channels.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
import torchvision

from spectral_probe.regularizers._ablation import ablation_loss_increase


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def per_channel(
    net: torch.nn.Module, layer: str, x: torch.Tensor, y: torch.Tensor, channels: int, grad: bool
) -> torch.Tensor:
    """Loss increase of zeroing each of the first ``channels`` channels, one forward each."""
    module = net.get_submodule(layer)
    with torch.no_grad():
        base = F.cross_entropy(net(x), y)
    out = []
    for j in range(channels):

        def zero(m: torch.nn.Module, a: object, o: torch.Tensor, j: int = j) -> torch.Tensor:
            o = o.clone()
            o[:, j] = 0
            return o

        handle = module.register_forward_hook(zero)
        with torch.set_grad_enabled(grad):
            out.append((F.cross_entropy(net(x), y) - base).detach())
        handle.remove()
    return torch.stack(out)


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--arch", default="resnet50" if cuda else "resnet18")
    parser.add_argument("--size", type=int, default=224 if cuda else 64)
    parser.add_argument("--batch", type=int, default=48 if cuda else 16)
    parser.add_argument("--layers", default="layer1,layer2,layer3,layer4")
    parser.add_argument("--loop-channels", type=int, default=32)
    parser.add_argument("--memory-mb", type=int, default=2048 if cuda else 256)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = getattr(torchvision.models, args.arch)(num_classes=100).to(device).eval()
    x = torch.randn(args.batch, 3, args.size, args.size, device=device)
    y = torch.randint(0, 100, (args.batch,), device=device)
    print(
        f"# bench_delta: torch {torch.__version__}, {device}, {args.arch}, batch {args.batch}, "
        f"{args.size}px, {torch.get_num_threads()} CPU threads"
    )
    print(
        f"{'layer':8s} {'C':>5s} {'batched (s)':>12s} {'loop grad (s)':>14s} {'ratio':>7s} "
        f"{'loop no_grad (s)':>17s} {'ratio':>7s} {'max |diff|':>11s}"
    )
    elements = args.memory_mb * 2**20 // 4
    for layer in args.layers.split(","):
        ablation_loss_increase(net, layer, [(x, y)], max_elements=elements)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        batched = ablation_loss_increase(net, layer, [(x, y)], max_elements=elements)
        sync(device)
        t_batched = time.perf_counter() - t0
        c = batched.numel()
        n = min(c, args.loop_channels)
        times = {}
        for grad in (True, False):
            sync(device)
            t0 = time.perf_counter()
            loop = per_channel(net, layer, x, y, n, grad)
            sync(device)
            times[grad] = (time.perf_counter() - t0) * c / n
        diff = (batched[:n] - loop).abs().max().item()
        print(
            f"{layer:8s} {c:5d} {t_batched:12.2f} {times[True]:14.2f} "
            f"{times[True] / t_batched:6.1f}x {times[False]:17.2f} "
            f"{times[False] / t_batched:6.1f}x {diff:11.1e}"
        )
    print(f"(loop times measured on the first {args.loop_channels} channels, scaled to C)")


if __name__ == "__main__":
    main()
