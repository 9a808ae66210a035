"""plotting.feature_figures: the feature commands' figure lists, drawn and written."""

from __future__ import annotations

from pathlib import Path

from spectral_probe.plotting import (
    feature_spectrum_figures,
    save_figures,
    similarity_figures,
)

from .test_features import _result as _spectra
from .test_similarity import _result as _similarity


def test_feature_spectrum_figures_follow_the_result(tmp_path: Path) -> None:
    names = [p.name for _, p, _ in feature_spectrum_figures(_spectra(), tmp_path)]
    assert names == [
        "batch_spectra.png",
        "batch_spectra_small_half.png",
        "batch_spectra_normalised.png",
        "dataset_spectrum.png",
    ]
    bare = feature_spectrum_figures(_spectra(dataset=False), tmp_path)
    assert "dataset_spectrum.png" not in [p.name for _, p, _ in bare]
    written = save_figures(bare, processes=1)
    assert all(p.stat().st_size > 1000 for p in written)


def test_similarity_figures_one_heatmap_per_metric(tmp_path: Path) -> None:
    jobs = similarity_figures(_similarity(), tmp_path)
    assert [p.name for _, p, _ in jobs] == [
        "heatmap_cka.png",
        "heatmap_procrustes.png",
        "by_depth.png",
    ]
    titles = [make().axes[0].get_title() for make, _, _ in jobs[:2]]
    assert titles[0].startswith("cka") and titles[1].startswith("procrustes")
