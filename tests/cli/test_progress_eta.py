"""The progress bar's time left is weighed by layer size, not by layer count."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from spectral_probe_cli._common import WorkDone, progress_bar

from spectral_probe.analysis import compare_weights
from spectral_probe.analysis._layers import layer_cost


def test_work_done_counts_without_costs_and_weighs_with_them() -> None:
    work = WorkDone()
    assert work(1, 4, "a") == (1.0, 4.0)
    work.expect({"big": 90.0, "small": 10.0})
    assert work(1, 2, "small") == (10.0, 100.0)  # one layer of two, but a tenth of the work
    assert work(2, 2, "big") == (100.0, 100.0)


def test_compare_weights_gives_the_bar_every_layers_cost_first() -> None:
    g = torch.Generator().manual_seed(0)
    a = {
        "big.weight": torch.randn(64, 48, generator=g),
        "small.weight": torch.randn(4, 8, generator=g),
    }
    b = {k: v + 0.01 for k, v in a.items()}
    seen: list[Any] = []

    def progress(done: int, total: int, item: str) -> None:
        seen.append((done, total, item))

    progress.expect = lambda costs: seen.append(dict(costs))  # type: ignore[attr-defined]
    from spectral_probe.sources import StateDictSource

    compare_weights(
        StateDictSource(a, "a"), StateDictSource(b, "b"), device="cpu", progress=progress
    )
    assert seen[0] == {"big": layer_cost((64, 48)), "small": layer_cost((4, 8))}
    assert layer_cost((64, 48)) == 64 * 48 * 48 and sorted(s[2] for s in seen[1:]) == [
        "big",
        "small",
    ]


@pytest.mark.parametrize("quiet", [True, False])
def test_the_bar_takes_costs_and_updates(quiet: bool) -> None:
    with progress_bar("x", quiet=quiet) as update:
        getattr(update, "expect", lambda costs: None)({"a": 1.0, "b": 3.0})
        update(1, 2, "a")
        update(2, 2, "b")
