"""Benchmark: the two scenarios of issue 6 through the one engine.

* **GLUE fine-tuning** of MiniLM-L6 (``bundled:minilm-l6``, the ``glue`` preset's AdamW): tokens/s
  without and with BSS (``method="none"`` vs ``"bss"``, eta = 0.001, k = 1), the same batches
  for both, timed over ``--steps`` steps after ``--warmup`` in ``--repeats`` interleaved rounds
  (none, bss, none, bss...); medians. Tokens are the non-padding tokens of the timed batches.
  Target (issue 6): tokens/s without BSS / tokens/s with BSS <= 1.03 on GPU.
* **Permuted-pixel task**: the EWC paper's MLP (784-400-400-10, batch 100, plain SGD) on
  Fashion-MNIST: ms/step and seconds per epoch (600 steps) for task A (``none``) and task B
  (``ewc``, ``ewc+bss``), interleaved the same way. EWC's Fisher (once per run) is timed apart.

Data: a GLUE-format SST-2 folder generated here (random sentences of 8-60 words) unless
``--glue DIR`` names a real ``SST-2`` folder; Fashion-MNIST from the Debian package (digits
with a 64-400-400-10 MLP if absent).

Run: ``python bench/bench_scenarios.py [--device cuda] [--threads 1] [--steps N]``.
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

import numpy as np
import torch

from spectral_probe.data import load_dataset
from spectral_probe.models import save_checkpoint
from spectral_probe.regularizers.ewc import diagonal_fisher
from spectral_probe.training import MLP, FinetuneConfig, PixelPermutation, TrainingHook, finetune

_WORDS = [
    "the",
    "a",
    "film",
    "movie",
    "story",
    "plot",
    "actor",
    "actors",
    "scene",
    "scenes",
    "music",
    "score",
    "director",
    "script",
    "dialogue",
    "pace",
    "moving",
    "dull",
    "brilliant",
    "tedious",
    "charming",
    "clumsy",
    "warm",
    "cold",
    "funny",
    "sad",
    "long",
    "short",
    "bold",
    "quiet",
    "loud",
    "never",
    "always",
    "often",
    "rarely",
    "truly",
    "hardly",
    "quite",
    "very",
    "too",
    "so",
    "and",
    "but",
    "or",
    "yet",
    "because",
    "while",
    "though",
    "it",
    "is",
    "was",
    "seems",
    "feels",
    "looks",
    "plays",
    "runs",
    "ends",
    "starts",
    "drags",
    "soars",
    "falls",
    "rises",
]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Timer(TrainingHook):
    """Seconds per step over steps warmup+1 .. warmup+steps (and the tokens in them), then stop."""

    def __init__(self, warmup: int, steps: int, count_tokens: bool = False) -> None:
        self.warmup, self.steps, self.count_tokens = warmup, steps, count_tokens
        self.t0, self.seconds, self.tokens, self.prepare = 0.0, float("nan"), 0, float("nan")
        self.created = time.perf_counter()

    def on_start(self, trainer) -> None:  # type: ignore[no-untyped-def]
        self.prepare = time.perf_counter() - self.created  # set-up incl. the regularizers' prepare

    def on_step(self, trainer) -> None:  # type: ignore[no-untyped-def]
        if trainer.iteration == self.warmup:
            _sync(trainer.dist.device)
            self.t0 = time.perf_counter()
        elif trainer.iteration == self.warmup + self.steps:
            _sync(trainer.dist.device)
            self.seconds = (time.perf_counter() - self.t0) / self.steps
            if self.count_tokens:
                s = trainer.setup
                for t in range(self.warmup, self.warmup + self.steps):
                    batch, _ = s.collate([s.train[int(i)] for i in trainer.plan.global_indices(t)])
                    self.tokens += int(batch["attention_mask"].sum())
            trainer.request_stop("benchmark")


def _run(cfg: FinetuneConfig, warmup: int, steps: int, count_tokens: bool = False) -> _Timer:
    timer = _Timer(warmup, steps, count_tokens)
    with tempfile.TemporaryDirectory() as tmp:
        finetune(cfg, Path(tmp) / "run", hooks=[timer])
    return timer


def _sst2(folder: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    root = folder / "SST-2"
    root.mkdir(parents=True)
    for name, rows in (("train.tsv", n), ("dev.tsv", 64)):
        lines = ["sentence\tlabel"]
        for _ in range(rows):
            words = rng.choice(_WORDS, size=int(rng.integers(8, 61)))
            lines.append(" ".join(words) + f"\t{int(rng.integers(0, 2))}")
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def bench_glue(args: argparse.Namespace, workdir: Path) -> None:
    glue = Path(args.glue) if args.glue else _sst2(workdir, n=max(8 * args.batch, 256))
    cuda = args.device.startswith("cuda")
    base = FinetuneConfig(
        model="bundled:minilm-l6",
        data=f"glue-sst2:{glue}",
        task="text-classification",
        preset="glue",
        method="none",
        device=args.device,
        batch_size=args.batch,
        iterations=args.warmup + args.steps + 1,
        checkpoint_every=10**6,
        eval_max=args.batch,
        task_options={"max_length": args.max_length},
    ).resolve()
    bss = base.with_overrides(method="bss")
    print(
        f"## GLUE fine-tuning: MiniLM-L6, SST-2 format ({'generated' if not args.glue else glue}), batch "
        f"{args.batch}, max length {args.max_length}, AdamW{', AMP bf16' if cuda else ''}, {args.steps} timed steps "
        f"after {args.warmup}, {args.repeats} interleaved rounds"
    )
    runs: dict[str, list[_Timer]] = {"none": [], "bss": []}
    for _ in range(args.repeats):
        runs["none"].append(_run(base, args.warmup, args.steps, count_tokens=True))
        runs["bss"].append(_run(bss, args.warmup, args.steps, count_tokens=True))
    med = {}
    for name, timers in runs.items():
        rates = [t.tokens / (t.seconds * args.steps) for t in timers]
        med[name] = statistics.median(rates)
        print(
            f"{name:5s}: {med[name]:9.0f} tokens/s  {1000 * statistics.median(t.seconds for t in timers):8.1f} ms/step"
            f"   (rounds: {', '.join(f'{r:.0f}' for r in rates)} tokens/s; {timers[0].tokens // args.steps} tokens/step)"
        )
    print(
        f"tokens/s without BSS / with BSS: {med['none'] / med['bss']:.3f}   (target <= 1.03 on GPU)"
    )


def bench_permuted(args: argparse.Namespace, workdir: Path) -> None:
    try:
        load_dataset("fashion-mnist", "train")
        data, sizes = "fashion-mnist", [784, 400, 400, 10]
    except Exception:
        data, sizes = "digits", [64, 400, 400, 10]
    torch.manual_seed(0)
    spec = "mlp:" + "-".join(map(str, sizes))
    ckpt = save_checkpoint(
        workdir / "task_a.safetensors", MLP(sizes), base=spec, head="fc", num_classes=sizes[-1]
    )
    steps = args.mlp_steps
    common = dict(
        data=data,
        task="permuted",
        preset="permuted",
        device=args.device,
        iterations=args.warmup + steps + 1,
        checkpoint_every=10**6,
        eval_max=100,
    )
    cfgs = {
        "task A, none": FinetuneConfig(model=spec, method="none", **common).resolve(),
        "task B, ewc": FinetuneConfig(model=str(ckpt), method="ewc", **common).resolve(),
        "task B, ewc+bss": FinetuneConfig(model=str(ckpt), method="ewc+bss", **common).resolve(),
    }
    per_epoch = 60000 // 100 if data == "fashion-mnist" else 1343 // 100
    print(
        f"## permuted-pixel task: MLP {'-'.join(map(str, sizes))}, {data}, batch 100, SGD, {steps} timed steps "
        f"after {args.warmup}, {args.repeats} interleaved rounds; an epoch = {per_epoch} steps"
    )
    times: dict[str, list[float]] = {k: [] for k in cfgs}
    for _ in range(args.repeats):
        for name, cfg in cfgs.items():
            times[name].append(_run(cfg, args.warmup, steps).seconds)
    for name, ts in times.items():
        t = statistics.median(ts)
        print(
            f"{name:16s}: {1000 * t:7.2f} ms/step  {t * per_epoch:6.2f} s/epoch   "
            f"(rounds: {', '.join(f'{1000 * x:.2f}' for x in ts)} ms)"
        )
    model = MLP(sizes).to(args.device)
    ds = load_dataset(data, "train").with_transform(PixelPermutation(None))
    x, y = ds[np.arange(1024)]
    batches = [
        (x[i : i + 100].to(args.device), y[i : i + 100].to(args.device))
        for i in range(0, 1024, 100)
    ]
    _sync(torch.device(args.device))
    t0 = time.perf_counter()
    diagonal_fisher(model, batches, max_samples=1024)
    _sync(torch.device(args.device))
    print(
        f"EWC's diagonal Fisher (1024 task-A images, once per task-B run): {time.perf_counter() - t0:.2f} s"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads [default: torch's]")
    p.add_argument("--glue", help="a real GLUE SST-2 folder instead of the generated one")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--steps", type=int, help="timed GLUE steps [default: 30 on CUDA, 6 on CPU]")
    p.add_argument("--mlp-steps", type=int, default=200, help="timed MLP steps")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", choices=("glue", "permuted"))
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    args.steps = args.steps or (30 if cuda else 6)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    where = torch.cuda.get_device_name(0) if cuda else f"{torch.get_num_threads()} CPU threads"
    print(
        f"# scenarios benchmark, {date.today()}, {platform.machine()}, {where}, torch {torch.__version__}, "
        f"load {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "glue"):
            bench_glue(args, Path(tmp))
        if args.only in (None, "permuted"):
            bench_permuted(args, Path(tmp))


if __name__ == "__main__":
    main()
