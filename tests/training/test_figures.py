"""Figures of runs (spectral_probe/training/figures.py): 1a, 3a, 3d from tables; 3b,c from checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from spectral_probe.plotting import save_figure
from spectral_probe.training import (
    bss_pairs,
    collect_runs,
    finetune,
    plot_bss_k_sweep,
    plot_error_vs_rate,
    plot_spectra_with_without_bss,
    plot_spectrum_over_time,
    plot_tsvd_sweep,
    run_figures,
    runs_feature_spectra,
    sweep_table,
)

from ._runs import fake_run
from .conftest import tiny_config


@pytest.fixture
def table(tmp_path):
    accs = {"15%": 0.45, "30%": 0.60, "50%": 0.70, "100%": 0.78}
    for rate, acc in accs.items():
        for seed in (0, 1):
            fake_run(
                tmp_path,
                f"l2-{rate}-{seed}",
                data="cub200:/d",
                method="l2",
                rate=rate,
                seed=seed,
                acc=acc + 0.01 * seed,
                hp={"l2.alpha": 0.01},
            )
            for k in (1, 2, 4):
                fake_run(
                    tmp_path,
                    f"bss{k}-{rate}-{seed}",
                    data="cub200:/d",
                    method="l2+bss",
                    rate=rate,
                    seed=seed,
                    acc=acc + 0.005 * k,
                    hp={"l2.alpha": 0.01, "bss.k": k},
                )
            for r in (1, 8):
                fake_run(
                    tmp_path,
                    f"tsvd{r}-{rate}-{seed}",
                    data="cub200:/d",
                    method="l2+tsvd",
                    rate=rate,
                    seed=seed,
                    acc=acc - 0.002 * r,
                    hp={"l2.alpha": 0.01, "tsvd.r": r},
                )
    return sweep_table(tmp_path)


def test_error_vs_rate_draws_one_line_per_method(table, tmp_path):
    fig = plot_error_vs_rate(table)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["L2", "L2+BSS", "L2+TSVD"]
    l2 = ax.get_lines()[0]
    assert np.allclose(l2.get_xdata(), [15, 30, 50, 100])
    assert np.allclose(l2.get_ydata(), [1 - 0.455, 1 - 0.605, 1 - 0.705, 1 - 0.785])
    assert save_figure(fig, tmp_path / "f.png").stat().st_size > 0


def test_bss_k_and_tsvd_sweeps(table):
    k = [t.get_text() for t in plot_bss_k_sweep(table).axes[0].get_legend().get_texts()]
    assert k == ["L2 (k = 0)", "k = 1", "k = 2", "k = 4"]
    r = [t.get_text() for t in plot_tsvd_sweep(table).axes[0].get_legend().get_texts()]
    assert r == ["L2 (r = 0)", "r = 1", "r = 8"]
    with pytest.raises(ValueError, match="expected runs of dataset"):
        plot_bss_k_sweep(table, dataset="dogs")


def test_spectra_with_and_without_bss_from_checkpoints(tmp_path):
    for method in ("l2", "l2+bss"):
        for rate in ("15%", "100%"):
            cfg = tiny_config(
                method=method,
                rate=rate,
                iterations=15,
                hp={"bss.eta": 0.1} if "bss" in method else {},
            )
            finetune(cfg, tmp_path / cfg.run_id)
    runs = collect_runs(tmp_path)
    assert len(bss_pairs(runs)) == 4
    result = runs_feature_spectra(runs, max_batches=3, device="cpu")
    assert sorted(result.models) == ["l2 @ 100%", "l2 @ 15%", "l2+bss @ 100%", "l2+bss @ 15%"]
    fig = plot_spectra_with_without_bss(result)
    assert len(fig.axes) == 2
    styles = {line.get_label(): line.get_linestyle() for line in fig.axes[0].get_lines()}
    assert styles["L2+BSS 15%"] == ":" and styles["L2 15%"] == "-"
    assert len(fig.axes[1].get_lines()[0].get_xdata()) == 16  # the smaller half of b = 32
    from matplotlib.figure import Figure

    from spectral_probe.errors import ConfigError

    outer = Figure()
    given = outer.subplots(1, 2)
    assert plot_spectra_with_without_bss(result, ax=given) is outer  # drawn where it is told
    assert len(given[1].get_lines()[0].get_xdata()) == 16
    with pytest.raises(ConfigError, match="expected 2 axes"):
        plot_spectra_with_without_bss(result, ax=given[0])
    assert runs_feature_spectra(runs[runs["method"] == "l2"]) is None


def test_spectrum_over_time(tmp_path):
    run = finetune(tiny_config(method="l2+bss", iterations=20, log_every=5), tmp_path / "r")
    fig = plot_spectrum_over_time(run, smallest=4)
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4 and list(lines[0].get_xdata()) == [5, 10, 15, 20]


def test_run_figures_names_what_plot_runs_writes(table):
    names = [name for name, _ in run_figures(table, spectra=False)]
    assert names[0].startswith("error_vs_rate_")
    assert any(n.startswith("bss_k_") for n in names) == ("hp.bss.k" in table.cells)
    assert any(n.startswith("tsvd_r_") for n in names) == ("hp.tsvd.r" in table.cells)
