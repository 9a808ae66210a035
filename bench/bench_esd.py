"""Benchmark: ``layers --esd`` (``esd_layers``) against WeightWatcher ``analyze()`` on the same model.

Two models: a randomly initialised torchvision ResNet-50 (54 Conv2d/Linear layers) and the
bundled MiniLM-L6 (37 Linear layers). Model construction/loading is excluded from every timing.
Printed, measured side by side in this one run (interleaved rounds, medians):

* ``spectral_probe.analysis.esd_layers(model)``: the default of ``layers --esd`` (unfolded
  convs, the power-law fit and the Marchenko-Pastur fit, one thread per layer);
* WeightWatcher ``analyze()`` with its defaults, on the whole model (it also fits the embedding
  matrices of MiniLM, which we do not analyse);
* WeightWatcher ``analyze()`` on exactly our layers (the same modules in an ``nn.ModuleList``);
* parity: the largest relative difference of alpha between the two, on Linear layers and on
  convolutions with ``conv="slices"`` (WeightWatcher's convention).

Run: ``python bench/bench_esd.py [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from datetime import date
from functools import partial

import torch
from torch import nn


def resnet50() -> nn.Module:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet50().eval()


def minilm() -> nn.Module:
    from spectral_probe.models import load_model

    return load_model("bundled:minilm-l6").model.eval()


def ours(model: nn.Module, conv: str = "unfolded"):  # type: ignore[no-untyped-def]
    from spectral_probe.analysis import esd_layers

    return esd_layers(model, conv=conv)  # type: ignore[arg-type]


def same_layers(model: nn.Module) -> nn.ModuleList:
    """Our analysed modules (Conv2d/Linear, in order) in a container WeightWatcher walks."""
    return nn.ModuleList([m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))])


def ww(model: nn.Module):  # type: ignore[no-untyped-def]
    import weightwatcher  # type: ignore[import-untyped]

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return weightwatcher.WeightWatcher(model=model).analyze()


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def parity(model: nn.Module) -> tuple[float, float, int, int]:
    """Largest relative alpha difference vs WeightWatcher: (linear, conv with slices, n_linear, n_conv)."""
    mods = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    details = ww(nn.ModuleList(mods))
    ww_alpha = details["alpha"].tolist()
    mine = ours(model, "slices").layers
    lin: list[float] = []
    conv: list[float] = []
    for mod, a_ww, (_, row) in zip(mods, ww_alpha, mine.iterrows()):
        if row["alpha"] != row["alpha"] or (isinstance(mod, nn.Conv2d) and mod.groups > 1):
            continue
        rel = abs(row["alpha"] - a_ww) / a_ww
        (conv if isinstance(mod, nn.Conv2d) else lin).append(rel)
    return max(lin, default=float("nan")), max(conv, default=float("nan")), len(lin), len(conv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"# bench_esd  {date.today()}  {platform.machine()}  torch {torch.__version__}  threads {torch.get_num_threads()}",
        flush=True,
    )
    for label, build in (("ResNet-50 (random init)", resnet50), ("MiniLM-L6 (bundled)", minilm)):
        model = build()
        subset = same_layers(model)
        contenders: dict[str, Callable[[], object]] = {
            "esd_layers (layers --esd)": partial(ours, model),
            "WeightWatcher analyze(), whole model": partial(ww, model),
            "WeightWatcher analyze(), same layers": partial(ww, subset),
        }
        times: dict[str, list[float]] = {k: [] for k in contenders}
        for _ in range(args.repeats):
            for name, fn in contenders.items():
                times[name].append(timed(fn))
        print(f"\n## {label}: {len(subset)} Conv2d/Linear layers", flush=True)
        print(f"{'method':40s} {'median s':>9s} {'min s':>7s} {'max s':>7s}", flush=True)
        for name, ts in times.items():
            print(
                f"{name:40s} {statistics.median(ts):9.2f} {min(ts):7.2f} {max(ts):7.2f}", flush=True
            )
        base = statistics.median(times["esd_layers (layers --esd)"])
        for name in list(contenders)[1:]:
            print(
                f"ratio esd_layers / {name}: {base / statistics.median(times[name]):.3f}",
                flush=True,
            )
        lin, conv, n_lin, n_conv = parity(model)
        print(
            f"parity: max |Δα|/α on {n_lin} Linear layers {lin:.2e}; on {n_conv} ungrouped Conv2d (slices) {conv:.2e}",
            flush=True,
        )


if __name__ == "__main__":
    main()
