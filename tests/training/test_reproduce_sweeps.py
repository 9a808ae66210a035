"""The shipped ``reproduce`` sweeps (docs/reproduction.md): their grids, cell by cell."""

from __future__ import annotations

import pytest

from spectral_probe.errors import ConfigError
from spectral_probe.training.sweep import list_packaged_sweeps, load_sweep


def _cells(configs):
    return {(c.method, c.rate, c.hp.get("bss.k"), c.hp.get("tsvd.r")) for c in configs}


def test_cpu_reproduce_grid_trains_every_rate_for_the_same_epochs():
    configs = load_sweep("reproduce").configs()
    rates = ("0.2%", "1%", "5%")
    assert _cells(configs) == (
        {("l2", r, None, None) for r in rates}
        | {("l2+bss", r, 1, None) for r in rates}
        | {("l2+bss", r, 8, None) for r in ("0.2%", "5%")}
        | {("l2+tsvd", "0.2%", None, 2), ("l2+tsvd", "0.2%", None, 8), ("l2+tsvd", "5%", None, 8)}
    )
    assert len(configs) == 11 * 3 and {c.seed for c in configs} == {0, 1, 2}
    # the same epochs at every rate (iterations scale with the set): no rate/length confound
    assert {
        (c.model, c.data, c.epochs, c.iterations, c.schedule, c.image_size, c.eval_max)
        for c in configs
    } == {("bundled:efficientnet_lite0", "fashion-mnist", 20, None, "cosine", 64, None)}


def test_quick_reproduce_has_every_figure_at_a_scarce_and_an_ample_rate():
    quick = load_sweep("reproduce-quick").configs()
    assert _cells(quick) == {
        ("l2", "0.2%", None, None),
        ("l2", "1%", None, None),
        ("l2+bss", "0.2%", 1, None),
        ("l2+bss", "1%", 1, None),
        ("l2+bss", "0.2%", 8, None),
        ("l2+tsvd", "0.2%", None, 2),
        ("l2+tsvd", "0.2%", None, 8),
        ("l2+tsvd", "1%", None, 8),
    }
    assert len(quick) == 8 * 3
    assert {(c.epochs, c.iterations, c.schedule, c.eval_max) for c in quick} == {
        (8, None, "cosine", 1000)
    }


def test_paper_reproduce_grid_and_its_shared_figure3_cells(monkeypatch):
    assert {"reproduce", "reproduce-quick", "reproduce-paper"} <= set(list_packaged_sweeps())
    monkeypatch.setenv("DATA", "/data")
    configs = load_sweep("reproduce-paper").configs()
    assert len(configs) == (1 + 1 + 4 + 4) * 4 * 3
    indoor = [c for c in configs if c.data.startswith("mit-indoor67:")]
    assert {c.method for c in indoor} == {"l2"} and len(indoor) == 12
    dogs = [c for c in configs if c.data.startswith("stanford-dogs:")]
    assert sorted({(c.method, c.hp.get("tsvd.r"), c.hp.get("bss.k")) for c in dogs}) == sorted(
        [("l2", None, None)]
        + [("l2+tsvd", r, None) for r in (1, 2, 4, 8)]
        + [("l2+bss", None, k) for k in (1, 2, 4, 8)]
    )
    assert {(c.model, c.preset, c.image_size, c.iterations) for c in configs} == {
        ("torchvision:resnet50:IMAGENET1K_V1", "paper", 224, 9000)
    }
    assert {c.run_id for c in dogs} == {c.run_id for c in load_sweep("figure3").configs()}
    monkeypatch.delenv("DATA")
    with pytest.raises(ConfigError, match="environment variable DATA"):
        load_sweep("reproduce-paper")
