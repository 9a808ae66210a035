"""Benchmark: the training engine against a bare PyTorch loop, and a BSS step against a plain one.

Measured side by side in one run, on the same model, data, transform, optimizer and precision:

* ``bare``: a hand-written loop (``make_loader`` batches, forward, cross-entropy, backward,
  SGD step with the head at 10x and weight decay as L2) -- what the engine must not slow down;
* ``engine l2``: :func:`spectral_probe.training.finetune` with ``method="l2"`` (the same
  work plus the engine's bookkeeping: seeded batches, feature capture, meters, logging
  with the feature matrix's singular values every 50 steps);
* ``engine l2+bss``: the same with BSS (``eta = 0.001, k = 1``).

Each is timed over ``--steps`` steps after ``--warmup`` (CUDA synchronised at both ends),
in ``--repeats`` interleaved rounds (A B C A B C ...) so drifting load on a shared machine
hits all three alike; the medians are reported. Targets (issue 4): engine >= 0.95 x bare;
BSS step <= 1.03 x plain (ResNet-50, batch 48, 224 px, GPU with AMP).

CPU default: ResNet-18 (random init) at 64 px, batch 48, on Fashion-MNIST (digits if absent).
CUDA default: ResNet-50 at 224 px, batch 48, AMP (bf16), channels-last.

Run: ``python bench/bench_engine.py [--device cuda] [--model ...] [--size ...] [--steps ...]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

from spectral_probe.data import load_dataset, make_loader, make_splits
from spectral_probe.models import load_model, replace_head
from spectral_probe.training import FinetuneConfig, TrainingHook, finetune
from spectral_probe.training.image import init_head
from spectral_probe.training.optim import amp_dtype, use_channels_last


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Timer(TrainingHook):
    """Seconds per step over steps warmup+1 .. warmup+steps, then stop the run."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.t0, self.seconds = warmup, steps, 0.0, float("nan")

    def on_step(self, trainer) -> None:  # type: ignore[no-untyped-def]
        if trainer.iteration == self.warmup:
            _sync(trainer.dist.device)
            self.t0 = time.perf_counter()
        elif trainer.iteration == self.warmup + self.steps:
            _sync(trainer.dist.device)
            self.seconds = (time.perf_counter() - self.t0) / self.steps
            trainer.request_stop("benchmark")


def engine_step(cfg: FinetuneConfig, warmup: int, steps: int) -> float:
    timer = _Timer(warmup, steps)
    with tempfile.TemporaryDirectory() as tmp:
        finetune(cfg, Path(tmp) / "run", hooks=[timer])
    return timer.seconds


def bare_step(cfg: FinetuneConfig, warmup: int, steps: int) -> float:
    """The same work as the engine with method l2, written as a plain loop."""
    from spectral_probe.data import image_transform

    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the engine does
    full = load_dataset(cfg.data, "train")
    splits = make_splits(full.targets, rate=cfg.rate, seed=cfg.seed, min_per_class=2)
    loaded = load_model(cfg.model)
    pre = loaded.preprocessing
    tf = image_transform(
        full, train=True, size=cfg.image_size, resize=cfg.resize, mean=pre.mean, std=pre.std
    )
    train = full.with_transform(tf).subset(splits.train)
    model = loaded.model
    head = replace_head(model, len(full.classes), loaded.head)
    init_head(model.get_submodule(head), "normal")
    cl = use_channels_last(cfg.channels_last, device, "image", model)  # as the engine decides
    model = model.to(
        device, memory_format=torch.channels_last if cl else torch.preserve_format
    ).train()
    head_params = list(model.get_submodule(head).parameters())
    ids = {id(p) for p in head_params}
    groups = [
        {
            "params": [p for p in model.parameters() if id(p) not in ids],
            "lr": cfg.lr / cfg.head_lr_ratio,
        },
        {"params": head_params, "lr": cfg.lr},
    ]
    opt = torch.optim.SGD(
        groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.hp.get("l2.alpha", 0.01)
    )
    amp = amp_dtype(cfg.amp, device)
    loader = make_loader(
        train,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        drop_last=True,
        pin_memory=device.type == "cuda",
        num_workers=cfg.num_workers,
    )
    done, t0 = 0, 0.0
    while True:
        for xb, yb in loader:
            x, y = xb.to(device, non_blocking=True), yb.to(device, non_blocking=True)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            with (
                torch.autocast("cuda", dtype=amp)
                if amp is not None
                else torch.autocast("cpu", enabled=False)
            ):
                loss = torch.nn.functional.cross_entropy(model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            if done == warmup:
                _sync(device)
                t0 = time.perf_counter()
            elif done == warmup + steps:
                _sync(device)
                return (time.perf_counter() - t0) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--model")
    p.add_argument("--data")
    p.add_argument("--size", type=int)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--steps", type=int)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workers", type=int, help="loader processes [default: 4 on CUDA, 0 on CPU]")
    args = p.parse_args()
    cuda = args.device.startswith("cuda")
    model = args.model or ("torchvision:resnet50" if cuda else "torchvision:resnet18")
    size = args.size or (224 if cuda else 64)
    steps = args.steps or (50 if cuda else 15)
    workers = args.workers if args.workers is not None else (4 if cuda else 0)
    data = args.data
    if data is None:
        try:
            load_dataset("fashion-mnist", "train")
            data = "fashion-mnist"
        except Exception:
            data = "digits"
    base = FinetuneConfig(
        model=model,
        data=data,
        method="l2",
        rate="100%",
        preset="paper",
        device=args.device,
        batch_size=args.batch,
        image_size=size,
        resize=round(size * 256 / 224),
        iterations=args.warmup + steps + 1,
        eval_max=args.batch,
        ten_crop=False,
        checkpoint_every=10**6,
        num_workers=workers,
    ).resolve()
    bss = base.with_overrides(method="l2+bss")
    gpu = torch.cuda.get_device_name(0) if cuda else f"{torch.get_num_threads()} CPU threads"
    print(
        f"# engine benchmark, {date.today()}, {platform.machine()}, {gpu}, torch {torch.__version__}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    print(
        f"# {model}, {size} px, batch {args.batch}, {data}, {args.device}"
        f"{', AMP ' + str(amp_dtype('auto', torch.device(args.device))).replace('torch.', '') if cuda else ''}, "
        f"{steps} timed steps after {args.warmup}, {args.repeats} interleaved rounds, {workers} loader workers"
    )
    times: dict[str, list[float]] = {"bare": [], "engine l2": [], "engine l2+bss": []}
    for _ in range(args.repeats):
        times["bare"].append(bare_step(base, args.warmup, steps))
        times["engine l2"].append(engine_step(base, args.warmup, steps))
        times["engine l2+bss"].append(engine_step(bss, args.warmup, steps))
    med = {k: statistics.median(v) for k, v in times.items()}
    for name, t in med.items():
        print(
            f"{name:14s}: {1000 * t:8.1f} ms/step  {args.batch / t:8.1f} img/s   "
            f"(rounds: {', '.join(f'{1000 * x:.1f}' for x in times[name])} ms)"
        )
    print(f"engine / bare images/s: {med['bare'] / med['engine l2']:.3f}   (target >= 0.95)")
    print(
        f"BSS step / plain step:  {med['engine l2+bss'] / med['engine l2']:.3f}   (target <= 1.03 on GPU)"
    )


if __name__ == "__main__":
    main()
