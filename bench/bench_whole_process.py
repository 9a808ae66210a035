"""Benchmark: what a user waits for, whole processes timed side by side.

Every contender is a fresh Python process, timed from start to exit (imports, loading, analysis,
writing), in interleaved rounds so that machine noise hits them alike; medians are printed with
the ratios against the goals.

* the pair: a randomly initialised torchvision ResNet-50 state dict and a copy perturbed by 1e-3
  of each tensor's standard deviation, saved as ``.pt`` and as ``.safetensors`` (made offline in
  a temporary folder at start);
* ``plain float64 script``: loads both ``.pt`` files with ``torch.load(weights_only=True)`` and
  runs ``torch.linalg.svd`` in float64 on every conv/linear weight of both, plus index-matched
  |cos| (what one writes without this toolkit);
* ``WeightWatcher analyze (1 model)``: builds the ResNet-50, loads ``a.pt`` into it and runs
  ``weightwatcher.WeightWatcher(model).analyze()`` (skipped if weightwatcher is not installed);
* ``compare-weights`` with ``--json``, and with ``--out`` (figures included), on the ``.pt`` pair
  (``--arch torchvision:resnet50``), on the ``.safetensors`` pair, and on the ``.pt`` pair
  without ``--arch`` (layers read from the state dict's tensors: no torchvision at all); and
  ``--out --no-figures`` on the ``.pt`` pair (the files without the figures: what the figures
  cost);
* ``spectral-probe --help`` and ``spectral-probe layers bundled:efficientnet_lite0``.

Wall-clock time is the goal's measure; CPU time (user + system, of each process and its
children) is printed beside it because other jobs on a shared machine disturb it far less.

Run: ``python bench/bench_whole_process.py [--rounds 3] [--no-ww] [--only help,layers] [--no-warmup]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

MAKE_PAIR = """
import sys, torch, torchvision
from safetensors.torch import save_file
out = sys.argv[1]
torch.manual_seed(0)
a = {k: v.clone() for k, v in torchvision.models.resnet50().state_dict().items()}
gen = torch.Generator().manual_seed(1)
b = {}
for k, v in a.items():
    if v.is_floating_point() and v.numel() > 1:
        b[k] = v + 1e-3 * v.std() * torch.randn(v.shape, generator=gen)
    else:
        b[k] = v.clone()
torch.save(a, f"{out}/a.pt"); torch.save(b, f"{out}/b.pt")
save_file(a, f"{out}/a.safetensors"); save_file(b, f"{out}/b.safetensors")
"""

PLAIN = """
import sys, torch
a = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
b = torch.load(sys.argv[2], map_location="cpu", weights_only=True)
out = {}
for name, wa in a.items():
    if not name.endswith("weight") or wa.dim() not in (2, 4):  # conv and linear weights
        continue
    ua, sa, _ = torch.linalg.svd(wa.reshape(wa.shape[0], -1).double(), full_matrices=False)
    ub, sb, _ = torch.linalg.svd(b[name].reshape(wa.shape[0], -1).double(), full_matrices=False)
    out[name] = (sa, sb, (ua * ub).sum(0).abs())
print(len(out), "layers")
"""

WEIGHTWATCHER = """
import logging, sys, warnings, torch, torchvision
import weightwatcher as ww
logging.getLogger("weightwatcher").setLevel(logging.ERROR)
model = torchvision.models.resnet50()
model.load_state_dict(torch.load(sys.argv[1], map_location="cpu", weights_only=True))
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    details = ww.WeightWatcher(model=model.eval()).analyze()
print(len(details), "layers")
"""


def _cli() -> list[str]:
    beside = Path(sys.executable).with_name("spectral-probe")
    found = str(beside) if beside.exists() else shutil.which("spectral-probe")
    if found is None:
        raise SystemExit("spectral-probe is not installed (pip install -e .)")
    return [found]


def _cpu() -> float:
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    return use.ru_utime + use.ru_stime


def _run(cmd: list[str], out_dir: Path | None) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one whole process."""
    if out_dir is not None:
        shutil.rmtree(out_dir, ignore_errors=True)
    cpu = _cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return elapsed, _cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-ww", action="store_true", help="skip WeightWatcher")
    parser.add_argument("--only", help="comma-separated contender keys (see the table)")
    parser.add_argument(
        "--no-warmup", action="store_true", help="skip the untimed first run of each"
    )
    args = parser.parse_args()
    py = sys.executable
    sp = _cli()
    have_ww = not args.no_ww
    if have_ww:
        have_ww = (
            subprocess.run(
                [py, "-c", "import weightwatcher"], check=False, capture_output=True
            ).returncode
            == 0
        )

    with tempfile.TemporaryDirectory(prefix="bench_whole_") as tmp_name:
        tmp = Path(tmp_name)
        subprocess.run([py, "-c", MAKE_PAIR, str(tmp)], check=True)
        a_pt, b_pt = str(tmp / "a.pt"), str(tmp / "b.pt")
        a_st, b_st = str(tmp / "a.safetensors"), str(tmp / "b.safetensors")
        arch = ["--arch", "torchvision:resnet50"]
        out = tmp / "out"
        contenders: dict[str, tuple[list[str], Path | None]] = {
            "plain": ([py, "-c", PLAIN, a_pt, b_pt], None),
            "cw-json": ([*sp, "compare-weights", a_pt, b_pt, *arch, "--json", "-q"], None),
            "cw-out": ([*sp, "compare-weights", a_pt, b_pt, *arch, "--out", str(out), "-q"], out),
            "cw-nofig": (
                [
                    *sp,
                    "compare-weights",
                    a_pt,
                    b_pt,
                    *arch,
                    "--out",
                    str(out),
                    "--no-figures",
                    "-q",
                ],
                out,
            ),
            "cw-st-json": ([*sp, "compare-weights", a_st, b_st, *arch, "--json", "-q"], None),
            "cw-st-out": (
                [*sp, "compare-weights", a_st, b_st, *arch, "--out", str(out), "-q"],
                out,
            ),
            "cw-noarch-json": ([*sp, "compare-weights", a_pt, b_pt, "--json", "-q"], None),
            "cw-noarch-out": (
                [*sp, "compare-weights", a_pt, b_pt, "--out", str(out), "-q"],
                out,
            ),
            "help": ([*sp, "--help"], None),
            "layers": ([*sp, "layers", "bundled:efficientnet_lite0"], None),
        }
        if have_ww:
            contenders["ww"] = ([py, "-c", WEIGHTWATCHER, a_pt], None)
        if args.only:
            keep = set(args.only.split(","))
            contenders = {k: v for k, v in contenders.items() if k in keep}
        if not args.no_warmup:
            for cmd, out_dir in contenders.values():  # warm-up: page cache, .pyc files
                _run(cmd, out_dir)
        times: dict[str, list[float]] = {k: [] for k in contenders}
        cpu: dict[str, list[float]] = {k: [] for k in contenders}
        for r in range(args.rounds):
            for key, (cmd, out_dir) in contenders.items():
                wall, used = _run(cmd, out_dir)
                times[key].append(wall)
                cpu[key].append(used)
                print(
                    f"round {r + 1} {key}: {wall:.2f} s wall, {used:.2f} s cpu, "
                    f"load {os.getloadavg()[0]:.1f}",
                    file=sys.stderr,
                    flush=True,
                )

    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    load = os.getloadavg()[0]
    print(
        f"# whole-process benchmark, {date.today()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.rounds} interleaved rounds, load average at the end {load:.1f}"
    )
    labels = {
        "plain": "plain float64 script (.pt)",
        "ww": "WeightWatcher analyze, 1 model (.pt)",
        "cw-json": "compare-weights --json (.pt)",
        "cw-out": "compare-weights --out (.pt, figures)",
        "cw-nofig": "compare-weights --out --no-figures (.pt)",
        "cw-st-json": "compare-weights --json (.safetensors)",
        "cw-st-out": "compare-weights --out (.safetensors)",
        "cw-noarch-json": "compare-weights --json (.pt, no --arch)",
        "cw-noarch-out": "compare-weights --out (.pt, no --arch)",
        "help": "spectral-probe --help",
        "layers": "layers bundled:efficientnet_lite0",
    }
    print(f"{'process':40s} {'median s':>9s} {'min s':>8s} {'max s':>8s} {'cpu s':>8s}")
    for key, values in times.items():
        print(
            f"{labels[key]:40s} {med[key]:9.2f} {min(values):8.2f} {max(values):8.2f} {med_cpu[key]:8.2f}"
        )
    print("\nratios (lower is faster):")
    for key in (
        "cw-json",
        "cw-out",
        "cw-nofig",
        "cw-st-json",
        "cw-st-out",
        "cw-noarch-json",
        "cw-noarch-out",
    ):
        if key not in med:
            continue
        for ref, name, goal in (
            ("plain", "plain float64 script", 0.5),
            ("ww", "WeightWatcher (1)", 1.0),
        ):
            if ref in med:
                print(
                    f"  {labels[key]:38s} / {name:20s} = {med[key] / med[ref]:.3f} wall, "
                    f"{med_cpu[key] / med_cpu[ref]:.3f} cpu  (goal <= {goal})"
                )
    for key in ("help", "layers"):
        if key in med:
            print(f"  {labels[key]:38s} = {med[key]:.2f} s  (goal <= 1.5 s)")


if __name__ == "__main__":
    main()
