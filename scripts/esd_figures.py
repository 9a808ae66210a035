"""Docs figures and numbers of the ESD page (docs/esd.md), from the bundled Lite0 and MiniLM.

Writes ``docs/img/esd_*.png`` and prints the per-model summaries quoted on the page:

* MiniLM-L6: alpha per layer and the ESD with its fit for four layers;
* EfficientNet-Lite0: alpha per layer with the unfolded convention and with WeightWatcher's
  per-kernel-position slices on one axes, and the ESD fits of the same layers in both.

Run: ``python scripts/esd_figures.py`` (about 30 s on 2 CPU cores).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from spectral_probe.analysis import esd_layers
from spectral_probe.models import load_model
from spectral_probe.plotting import (
    default_esd_layers,
    new_figure,
    plot_alpha_profile,
    plot_esd_fits,
    save_figure,
)

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"


def _summary(label: str, res) -> None:  # type: ignore[no-untyped-def]
    s = res.summary()
    small = res.layers[res.layers["n_evals"] < 20]
    print(
        f"{label}: {s['fitted']}/{s['layers']} fitted, mean alpha {s['mean_alpha']:.2f}, "
        f"mean alpha_hat {s['mean_alpha_hat']:.2f}, over-trained {s['over_trained']}, "
        f"under-trained {s['under_trained']}, layers with < 20 eigenvalues {len(small)}"
    )


def main() -> None:
    minilm = esd_layers(load_model("bundled:minilm-l6"))
    _summary("MiniLM-L6", minilm)
    save_figure(plot_alpha_profile(minilm), IMG / "esd_alpha_minilm.png")
    save_figure(plot_esd_fits(minilm), IMG / "esd_fits_minilm.png")

    lite0 = load_model("bundled:efficientnet_lite0")
    unfolded = esd_layers(lite0, conv="unfolded")
    slices = esd_layers(lite0, conv="slices")
    _summary("Lite0 unfolded", unfolded)
    _summary("Lite0 slices", slices)
    both = unfolded.layers[["layer", "alpha"]].merge(
        slices.layers[["layer", "alpha", "conv"]], on="layer"
    )
    sliced = both[both["conv"] == "slices"]
    changed = sliced[(sliced["alpha_x"] - sliced["alpha_y"]).abs() > 1e-9]
    print(
        f"Lite0: {len(sliced)} layers analysed as slices, alpha differs on {len(changed)}: "
        + ", ".join(
            f"{r.layer} {r.alpha_x:.2f} (unfolded) vs {r.alpha_y:.2f} (slices)"
            for r in changed.itertuples()
        )
    )
    fig = new_figure((11, 4.2))
    ax = fig.add_subplot()
    plot_alpha_profile(
        dataclasses.replace(unfolded, meta={**unfolded.meta, "model": "unfolded"}), ax=ax
    )
    plot_alpha_profile(
        dataclasses.replace(slices, meta={**slices.meta, "model": "slices (WeightWatcher)"}), ax=ax
    )
    ax.set_title("EfficientNet-Lite0: α per layer, two conv conventions")
    save_figure(fig, IMG / "esd_alpha_lite0_conventions.png")
    layers = default_esd_layers(unfolded)
    save_figure(plot_esd_fits(unfolded, layers), IMG / "esd_fits_lite0_unfolded.png")
    save_figure(plot_esd_fits(slices, layers), IMG / "esd_fits_lite0_slices.png")
    print("ESD-fit layers:", ", ".join(layers))


if __name__ == "__main__":
    main()
