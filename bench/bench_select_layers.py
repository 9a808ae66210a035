"""Benchmark: ``select-layers`` against Spectrum's procedure on a TinyLlama-width decoder.

Issue target (bf16, sharded safetensors written by ``save_pretrained``): ``spectral-probe
select-layers`` in <= 0.3x the time and <= 0.2x the peak RSS of Spectrum's procedure, which
loads the whole model in fp32 with transformers and takes ``torch.linalg.svdvals`` of every
module's weight (``spectrum.py`` of cognitivecomputations/spectrum at commit ``0ed1756``,
``calculate_snr_for_layer``), with every score equal to 1e-4 relative.

Each contender runs in its own fresh process (so its peak RSS is its own: ``ru_maxrss`` of the
child), in interleaved rounds; the medians and the ratios are printed, then the largest
relative score difference. The model is random (TinyLlama's shapes: hidden 2048, MLP 5632,
22 blocks, 32 heads with 4 key-value heads, vocabulary 32000), built once into ``--workdir``.

Each line also gives the child's CPU seconds (user + system, from ``wait4``'s rusage): on a
shared machine they are steadier than wall time, but only wall time on an idle machine is a
benchmark result. Peak RSS does not depend on the machine's load. The script exits with
status 1 when the scores differ by more than 1e-4 (relative) or the two score different names
(beyond a tied ``lm_head``).

Run: ``python bench/bench_select_layers.py [--rounds 3] [--workdir /tmp/sp-bench-sel]``;
``--tiny`` (2 blocks, hidden 256, MLP 704, vocabulary 4000, one round) is a quick smoke check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SPECTRUM = r"""
import json, sys, numpy as np, torch
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
out = {}
for name, module in model.named_modules():
    if not hasattr(module, "weight") or module.weight is None:
        continue
    weights = module.weight.detach()
    if weights.ndim < 2:
        weights = weights.unsqueeze(0)
    S = torch.linalg.svdvals(weights)
    sigma = (torch.quantile(S, 0.75) - torch.quantile(S, 0.25)) / 1.349
    n, m = weights.shape[-2:]
    beta = n / m if n < m else m / n
    threshold = sigma * np.sqrt((1 + np.sqrt(beta)) ** 2)
    signal_mask = S > threshold
    signal = S[signal_mask].sum() if signal_mask.any() else torch.tensor(0.0)
    noise = S[~signal_mask].sum() if (~signal_mask).any() else torch.tensor(1.0)
    snr = signal / noise if noise != 0 else float("inf")
    parts = name.split(".")
    i = next((k for k, p in enumerate(parts) if p.isdigit()), -1)
    out[name] = {"snr": float(snr / S[0]), "type": ".".join(parts[i + 1:]) if i != -1 else name}
json.dump(out, open(sys.argv[2], "w"))
"""


def _build(path: Path, args: argparse.Namespace) -> None:
    import torch
    import transformers as tr

    if (path / "config.json").is_file():
        return
    config = tr.LlamaConfig(
        hidden_size=args.hidden, intermediate_size=args.mlp, num_hidden_layers=args.layers,
        num_attention_heads=max(args.hidden // 64, 1), num_key_value_heads=4,
        vocab_size=args.vocab, tie_word_embeddings=False, dtype="bfloat16",
    )  # fmt: skip
    torch.manual_seed(0)
    model = tr.LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(path, max_shard_size="500MB")


def _run(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and the child's peak RSS in MiB (a fresh process per run)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"failed ({status}): {' '.join(cmd)}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--mlp", type=int, default=5632)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--workdir", type=Path, default=None, help="[/tmp/sp-bench-sel]")
    parser.add_argument(
        "--tiny", action="store_true", help="2 blocks, hidden 256, MLP 704, vocab 4000, 1 round"
    )
    args = parser.parse_args()
    if args.tiny:
        args.layers, args.hidden, args.mlp, args.vocab, args.rounds = 2, 256, 704, 4000, 1
    if args.workdir is None:
        args.workdir = Path("/tmp/sp-bench-sel-tiny" if args.tiny else "/tmp/sp-bench-sel")
    args.workdir.mkdir(parents=True, exist_ok=True)
    model = args.workdir / f"llama-{args.hidden}-{args.layers}"
    _build(model, args)
    script = args.workdir / "spectrum_procedure.py"
    script.write_text(SPECTRUM)
    ref_json, out_dir = args.workdir / "spectrum.json", args.workdir / "sel"
    cli = [sys.executable, "-c", "from spectral_probe_cli.main import run; run()"]
    ours = [*cli, "select-layers", str(model), "-q", "--no-figures", "--out", str(out_dir)]
    theirs = [sys.executable, str(script), str(model), str(ref_json)]
    times: dict[str, list[float]] = {"spectrum": [], "select-layers": []}
    cpu: dict[str, list[float]] = {"spectrum": [], "select-layers": []}
    rss: dict[str, list[float]] = {"spectrum": [], "select-layers": []}
    for _ in range(args.rounds):  # interleaved rounds
        for label, cmd in (("spectrum", theirs), ("select-layers", ours)):
            t, c, r = _run(cmd)
            times[label].append(t)
            cpu[label].append(c)
            rss[label].append(r)
    ref = json.loads(ref_json.read_text())
    got = json.loads((out_dir / "snr.json").read_text())
    common = [n for n in ref if n in got]
    worst = max(abs(got[n]["snr"] - ref[n]["snr"]) / max(abs(ref[n]["snr"]), 1e-30) for n in common)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    print(f"model: {model.name} (bf16, sharded), {len(common)} weights scored by both")
    print(f"rounds: {args.rounds}, interleaved; medians")
    for label, seconds in times.items():
        print(
            f"{label:>14}: {statistics.median(seconds):8.2f} s wall  "
            f"{statistics.median(cpu[label]):8.2f} s CPU  "
            f"peak RSS {statistics.median(rss[label]):8.0f} MiB"
        )

    def ratio(values: dict[str, list[float]]) -> float:
        return statistics.median(values["select-layers"]) / statistics.median(values["spectrum"])

    print(
        f"ratios (select-layers / Spectrum): time {ratio(times):.2f}x (goal <= 0.3x), "
        f"CPU {ratio(cpu):.2f}x, peak RSS {ratio(rss):.2f}x (goal <= 0.2x)"
    )
    print(f"largest relative score difference: {worst:.2e} (goal <= 1e-4)")
    missing = sorted(set(ref) - set(got))
    extra = sorted(set(got) - set(ref))
    if missing:
        print(f"scored by Spectrum only: {missing} (a tied lm_head is not stored)")
    if extra:
        print(f"scored by select-layers only: {extra}")
    if worst > 1e-4 or extra or [m for m in missing if m != "lm_head"]:
        raise SystemExit("scores differ from Spectrum's procedure")


if __name__ == "__main__":
    main()
