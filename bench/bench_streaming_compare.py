"""Benchmark: compare-weights on decoder directories read as tensors, against a plain streamed script.

Issue targets (TinyLlama width: hidden 2048, MLP 5632, 32/4 heads, vocab 32000; bf16, sharded,
written by transformers' ``save_pretrained``):

* peak RSS flat in depth: from 1 to 3 layers, +<= 150 MB; at 3 layers <= 1.8 GB in all;
* full spectra and angles in <= 0.5x the time of a plain streamed script (safetensors, float64
  ``torch.linalg.svd`` per pair, cosines of corresponding vectors);
* ``--top 64`` >= 10x faster than full, with sigma_1..64 within 1e-4 relative: the last column
  is the largest relative difference from the full path's values, over A and B and all layers
  (on these randomly initialised decoders the spectra are flat, the hard case for a sketch).

The peer: WeightWatcher's ``analyze`` with ``base_model=`` (both models built by transformers in
fp32), timed and measured the same way, with the count of the matrices it analyses.

Every contender runs in a fresh process (peak RSS is a per-process high-water mark), timed from
the process start (imports included), in interleaved rounds; medians (wall and CPU seconds,
user + system) are printed as a Markdown table with the ratios of this one run. The models are written once into ``--work``
(about 0.5 GB per model at 8 layers). ``--tiny`` shrinks everything to check that the script
runs (its numbers mean nothing).

Run: ``python bench/bench_streaming_compare.py [--layers 1 3] [--rounds 3] [--work /tmp/bsc]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

WIDTH = {
    "hidden_size": 2048,
    "intermediate_size": 5632,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "vocab_size": 32000,
}
TINY = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 256,
}


def write_models(work: Path, layers: int, tiny: bool) -> tuple[Path, Path]:
    """A base decoder and a fine-tune of it (1e-3 relative noise), bf16, sharded."""
    import torch
    import transformers as tr

    a, b = work / f"base-{layers}", work / f"tuned-{layers}"
    if (a / "config.json").is_file() and (b / "config.json").is_file():
        return a, b
    torch.manual_seed(0)
    config = tr.LlamaConfig(num_hidden_layers=layers, **(TINY if tiny else WIDTH))
    model = tr.LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(a, max_shard_size="200MB")
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * p.float().std() * torch.randn(p.shape, generator=gen))
    model.save_pretrained(b, max_shard_size="200MB")
    return a, b


def plain_script(a: str, b: str) -> None:
    """The reference: safetensors, float64 SVD per pair, cosines of corresponding vectors."""
    import json as _json

    import torch
    from safetensors import safe_open

    def handles(d: str) -> dict[str, object]:
        index = Path(d) / "model.safetensors.index.json"
        files = (
            sorted(set(_json.loads(index.read_text())["weight_map"].values()))
            if index.is_file()
            else ["model.safetensors"]
        )
        out = {}
        for f in files:
            h = safe_open(str(Path(d) / f), framework="pt")
            out.update(dict.fromkeys(h.keys(), h))
        return out

    ha, hb = handles(a), handles(b)
    for name in ha:
        if not name.endswith(".weight") or name not in hb:
            continue
        wa = ha[name].get_tensor(name)  # type: ignore[attr-defined]
        if wa.ndim != 2:
            continue
        wb = hb[name].get_tensor(name)  # type: ignore[attr-defined]
        ua = torch.linalg.svd(wa.double(), full_matrices=False).U
        ub = torch.linalg.svd(wb.double(), full_matrices=False).U
        (ua * ub).sum(0).abs()


def weightwatcher_delta(a: str, b: str) -> dict[str, int]:
    """WeightWatcher's own route: both models built with transformers, ``analyze`` on B - A.

    Returns how many 2-D weight matrices the model has and how many rows WeightWatcher's
    table holds, so the layers it skips are counted, not guessed.
    """
    import logging

    import transformers as tr
    import weightwatcher as ww

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    base = tr.AutoModelForCausalLM.from_pretrained(a, dtype="float32")
    tuned = tr.AutoModelForCausalLM.from_pretrained(b, dtype="float32")
    details = ww.WeightWatcher(model=tuned, base_model=base).analyze()
    matrices = sum(1 for n, p in tuned.named_parameters() if p.ndim == 2 and n.endswith("weight"))
    return {"matrices": matrices, "analysed": len(details)}


def child(args: argparse.Namespace) -> None:
    start = time.perf_counter()
    sigma: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    if args.contender == "plain":
        plain_script(args.a, args.b)
    elif args.contender == "weightwatcher":
        counts = weightwatcher_delta(args.a, args.b)
    else:
        from spectral_probe.analysis import compare_weights

        top = 64 if args.contender == "top64" else None
        res = compare_weights(args.a, args.b, top=top, device="cpu")
        for name, g in res.angles.groupby("layer", sort=False):
            sigma[str(name)] = g["sigma_a"].head(64).tolist() + g["sigma_b"].head(64).tolist()
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "peak_mib": usage.ru_maxrss / 1024,
                "sigma": sigma,
                "counts": counts,
            }
        )
    )


def worst_relative(top: dict[str, list[float]], full: dict[str, list[float]]) -> float:
    """Largest |sigma_top - sigma_full| / sigma_full over sigma_1..64 of A and B, all layers."""
    worst = 0.0
    for name, values in top.items():
        for got, want in zip(values, full.get(name, [])):
            if want > 0:
                worst = max(worst, abs(got - want) / want)
    return worst


def run(contender: str, a: Path, b: Path) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", contender, "--a", str(a), "--b", str(b)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_streaming_compare"))
    parser.add_argument("--tiny", action="store_true", help="tiny models: checks the script runs")
    parser.add_argument(
        "--no-weightwatcher", action="store_true", help="leave out the WeightWatcher contender"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--a", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--b", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.contender = args.child
        child(args)
        return
    contenders = ["plain", "full", "top64"] + ([] if args.no_weightwatcher else ["weightwatcher"])
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(
        "| layers | contender | median s | CPU s | peak RSS MiB | vs plain | max rel. err. of sigma_1..64 |"
    )
    print("|---|---|---|---|---|---|---|")
    for layers in args.layers:
        a, b = write_models(args.work, layers, args.tiny)
        times: dict[str, list[float]] = {c: [] for c in contenders}
        cpus: dict[str, list[float]] = {c: [] for c in contenders}
        peaks: dict[str, list[float]] = {c: [] for c in contenders}
        sigma: dict[str, dict[str, list[float]]] = {}
        counts: dict[str, int] = {}
        for _ in range(args.rounds):  # interleaved rounds
            for c in contenders:
                got = run(c, a, b)
                times[c].append(got["seconds"])
                cpus[c].append(got["cpu_s"])
                peaks[c].append(got["peak_mib"])
                sigma[c] = got["sigma"]
                counts = got["counts"] or counts
        plain = statistics.median(times["plain"])
        for c in contenders:
            t = statistics.median(times[c])
            err = f"{worst_relative(sigma[c], sigma['full']):.1e}" if c == "top64" else "-"
            print(
                f"| {layers} | {c} | {t:.2f} | {statistics.median(cpus[c]):.1f} | "
                f"{max(peaks[c]):.0f} | {t / plain:.2f}x | {err} |"
            )
        if counts:
            print(
                f"\nWeightWatcher analyze(base_model=...) at {layers} layer(s): "
                f"{counts['analysed']} rows for {counts['matrices']} 2-D weight matrices.\n"
            )


if __name__ == "__main__":
    main()
