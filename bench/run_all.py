"""Run every benchmark in bench/ one after the other (``make bench``).

Each script is standalone and prints its own ratios, measured side by side in one run; this
runner only sequences them (so that they never compete for the machine) and passes small
CPU-sized settings. Add ``--full`` for each script's own defaults, ``--only NAME`` to pick.
Results are recorded, with machine and date, in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: script -> arguments of the quick (CPU-sized) run
QUICK = {
    "bench_compare_weights.py": ["--repeats", "3"],
    "bench_whole_process.py": ["--rounds", "3"],
    "bench_bss.py": [],
    "bench_delta.py": [],
    "bench_engine.py": [],
    "bench_features.py": [
        "--device",
        "cpu",
        "--image-size",
        "96",
        "--batches",
        "6",
        "--rounds",
        "3",
    ],
    "bench_streaming_memory.py": ["--source", "synthetic"],
    "bench_data_loader.py": [],
    "bench_scenarios.py": ["--steps", "6", "--repeats", "3", "--mlp-steps", "200"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each script's own defaults")
    parser.add_argument("--only", action="append", help="run only this script (repeatable)")
    args = parser.parse_args()
    failed = []
    for script, quick in QUICK.items():
        if args.only and script not in args.only and script.removesuffix(".py") not in args.only:
            continue
        cmd = [sys.executable, str(HERE / script), *([] if args.full else quick)]
        print(f"\n===== {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(script)
        print(f"===== {script}: {time.perf_counter() - start:.0f} s", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
