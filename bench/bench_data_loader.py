"""Benchmark: images/s of the batched tensor path vs a per-sample PIL/v2 DataLoader.

Fashion-MNIST train (Debian package or torchvision root), batch 64, main process, at 64 px and
224 px, eval and train transforms. Both paths are measured side by side in one run.

Run: ``python bench/bench_data_loader.py``.
"""

from __future__ import annotations

import itertools
import os
import platform
import statistics
import time
from datetime import date

import torch

from spectral_probe.data import (
    TensorImageTransform,
    load_dataset,
    make_loader,
    paper_test_transform,
    paper_train_transform,
)


def images_per_second(loader, n_batches: int, repeats: int = 3) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeats):
        it = iter(loader)
        next(it)
        t0 = time.perf_counter()
        n = sum(x.shape[0] for x, _ in itertools.islice(it, n_batches))
        out.append(n / (time.perf_counter() - t0))
    return max(out), statistics.median(out)


def main() -> None:
    ds = load_dataset("fashion-mnist", "train")
    print(
        f"# data-loader benchmark, {date.today()}, {platform.machine()}, {torch.get_num_threads()} threads, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    for size, n_batches in ((64, 150), (224, 30)):
        for train in (False, True):
            fast = ds.with_transform(TensorImageTransform(size, train=train))
            _, med_f = images_per_second(make_loader(fast, 64, shuffle=True, seed=0), n_batches)
            resize = round(size * 256 / 224)
            tf = (
                paper_train_transform(size, resize) if train else paper_test_transform(size, resize)
            )
            slow = ds.with_transform(tf)
            _, med_s = images_per_second(
                make_loader(slow, 64, shuffle=True, seed=0), max(n_batches // 6, 5)
            )
            print(
                f"size {size:3d} {'train' if train else 'eval ':5s}: batched {med_f:8.0f} img/s, "
                f"per-sample {med_s:7.0f} img/s, ratio {med_f / med_s:5.1f}x"
            )


if __name__ == "__main__":
    main()
