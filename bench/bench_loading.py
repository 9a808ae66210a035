"""Benchmark: loading a ResNet-50 checkpoint, with and without building the network first.

* ``build + copy``: ``torchvision.models.resnet50()`` (random initialisation), then
  ``load_state_dict(torch.load(path, weights_only=True))``: the way before;
* ``load_model``: ``spectral_probe.models.load_model(path, arch="torchvision:resnet50")``, which
  builds on the meta device, memory-maps the file and assigns its tensors.

Both read the same ``.pt`` file (a random ResNet-50 state dict, written in a temporary folder),
after one untimed run each, in interleaved rounds; medians and the ratio are printed.

Run: ``python bench/bench_loading.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision

from spectral_probe.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet50.pt"
        torch.manual_seed(0)
        torch.save(torchvision.models.resnet50().state_dict(), path)

        def build_and_copy() -> object:
            model = torchvision.models.resnet50()
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()

        def ours() -> object:
            return load_model(str(path), arch="torchvision:resnet50")

        contenders: dict[str, Callable[[], object]] = {
            "build + copy": build_and_copy,
            "load_model": ours,
        }
        for fn in contenders.values():
            fn()
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(args.rounds):
            for key, fn in contenders.items():
                start = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - start)
    print(
        f"# loading a ResNet-50 .pt checkpoint, {args.rounds} interleaved rounds, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for key, values in times.items():
        print(
            f"{key:14s} median {statistics.median(values):.3f} s  (min {min(values):.3f}, max {max(values):.3f})"
        )
    ratio = statistics.median(times["load_model"]) / statistics.median(times["build + copy"])
    print(f"load_model / build + copy = {ratio:.3f}")


if __name__ == "__main__":
    main()
