"""The embedded default ("make demo"): the bundled ImageNet EfficientNet-Lite0 on Fashion-MNIST."""

from __future__ import annotations

from pathlib import Path

import torch

from .._io import staged_dir
from ..plotting import (
    plot_angle_heatmap,
    plot_batch_spectra,
    plot_corresponding_angles,
    plot_weight_spectra,
    save_figure,
)
from .build import Report
from .settings import ReportSettings

__all__ = ["DEMO_MODEL", "DEMO_DATA", "demo_settings", "write_demo_extras"]

DEMO_MODEL = "bundled:efficientnet_lite0"
DEMO_DATA = "fashion-mnist"


def demo_settings(device: str = "auto") -> ReportSettings:
    """The demo: L2 and L2+BSS at two per-class sampling rates.

    On CPU (2 cores: a few minutes): the ``demo`` preset (64 px, batch 32, 150 iterations), one
    seed, evaluation on 1000 validation images. On a GPU: the ``paper`` preset (224 px,
    batch 48, 9000 iterations, ten-crop test) and two seeds.
    """
    gpu = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    if gpu:
        return ReportSettings(
            model=DEMO_MODEL,
            data=DEMO_DATA,
            methods=("l2", "l2+bss"),
            rates=("1%", "5%"),
            seeds=(0, 1),
            preset="paper",
            eval_max=None,
            spectrum_batches=20,
            device=device,
            scaled_down=(
                "Fashion-MNIST (28 x 28 grey images, resized) stands in for the paper's fine-grained datasets.",
            ),
        )
    return ReportSettings(
        model=DEMO_MODEL,
        data=DEMO_DATA,
        methods=("l2", "l2+bss"),
        rates=("1%", "5%"),
        seeds=(0,),
        preset="demo",
        eval_max=1000,
        spectrum_batches=8,
        device=device,
        scaled_down=(
            "Scaled down to run on 2 CPU cores in minutes: EfficientNet-Lite0 at 64 px (the paper: ResNet-50 at "
            "224 px), 150 iterations of batch 32 (the paper: 9000 of batch 48), one seed (the paper: five), "
            "1000 validation images, single-crop evaluation.",
            "Fashion-MNIST (28 x 28 grey images, resized) stands in for the paper's fine-grained datasets.",
        ),
    )


def write_demo_extras(report: Report, out: str | Path) -> dict[str, Path]:
    """The demo's compare-weights and feature-spectrum folders, from the report's own results."""
    out = Path(out)
    ev = report.evidence
    written: dict[str, Path] = {}
    if ev.weights is not None:
        with staged_dir(out / "compare-weights") as tmp:
            ev.weights.to_csv(tmp)
            ev.weights.to_json(tmp / "results.json")
            save_figure(
                plot_corresponding_angles(ev.weights), tmp / "figures" / "corresponding_angles.png"
            )
            save_figure(
                plot_corresponding_angles(ev.weights, window=True),
                tmp / "figures" / "corresponding_angles_window.png",
            )
            save_figure(plot_angle_heatmap(ev.weights), tmp / "figures" / "angle_heatmap.png")
            save_figure(plot_weight_spectra(ev.weights), tmp / "figures" / "weight_spectra.png")
        written["compare-weights"] = out / "compare-weights"
    with staged_dir(out / "feature-spectrum") as tmp:
        ev.spectra.to_csv(tmp)
        ev.spectra.to_json(tmp / "results.json")
        save_figure(plot_batch_spectra(ev.spectra), tmp / "figures" / "batch_spectra.png")
        save_figure(
            plot_batch_spectra(ev.spectra, half=True), tmp / "figures" / "batch_spectra_half.png"
        )
        save_figure(
            plot_batch_spectra(ev.spectra, normalise=True),
            tmp / "figures" / "batch_spectra_normalised.png",
        )
    written["feature-spectrum"] = out / "feature-spectrum"
    return written
