"""The shipped ``reproduce`` sweeps (docs/reproduction.md): their grids, cell by cell."""

from __future__ import annotations

import pytest

from spectral_probe.errors import ConfigError
from spectral_probe.training.sweep import list_packaged_sweeps, load_sweep


def test_cpu_reproduce_grid():
    configs = load_sweep("reproduce").configs()
    assert {(c.method, c.rate, c.seed, c.hp.get("bss.k")) for c in configs} == {
        (m, r, s, 1 if m == "l2+bss" else None)
        for m in ("l2", "l2+bss")
        for r in ("1%", "5%", "50%")
        for s in (0, 1, 2)
    } | {("l2+bss", "1%", s, 8) for s in (0, 1, 2)}
    assert len(configs) == 21
    assert {
        (c.model, c.data, c.iterations, c.lr_step, c.image_size, c.resize, c.batch_size, c.eval_max)
        for c in configs
    } == {("bundled:efficientnet_lite0", "fashion-mnist", 2500, 1700, 64, 73, 32, None)}
    assert {c.hp.get("bss.k") for c in configs if c.method == "l2+bss"} == {1, 8}


def test_quick_reproduce_is_a_subset_of_the_cells_at_fewer_iterations():
    quick = load_sweep("reproduce-quick").configs()
    assert {(c.method, c.rate, c.seed, c.iterations, c.eval_max) for c in quick} == {
        (m, r, s, 300, 1000)
        for m in ("l2", "l2+bss")
        for r in ("1%", "5%", "50%")
        for s in (0, 1, 2)
    }
    full = {(c.method, c.rate, c.seed) for c in load_sweep("reproduce").configs()}
    assert {(c.method, c.rate, c.seed) for c in quick} <= full


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
