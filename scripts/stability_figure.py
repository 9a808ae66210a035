"""Docs figure: why index-matched angles need a stability check (docs/img/stability.png).

The bundled ImageNet EfficientNet-Lite0 against copies perturbed by Gaussian noise of 1% and 3%
of each tensor's standard deviation. Noise of that size does not change what a layer
computes, yet the index-matched |cos| of the top layers drops wherever singular values are
nearly equal; Wedin's bound flags those indices and the spectral-window alignment stays near 1.

Run: ``python scripts/stability_figure.py`` (about 10 s on 2 CPU cores).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from spectral_probe.analysis import compare_weights
from spectral_probe.models import load_model
from spectral_probe.plotting import new_figure, save_figure

OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "stability.png"
LAYER = "conv_head"


def perturbed(model: torch.nn.Module, scale: float, seed: int = 0) -> torch.nn.Module:
    other = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(scale * p.std() * torch.randn(p.shape, generator=gen))
    return other


def main() -> None:
    base = load_model("bundled:efficientnet_lite0").model
    fig = new_figure((10.0, 3.6))
    axes = fig.subplots(1, 3)
    for ax, scale in zip(axes[:2], (0.01, 0.03)):
        res = compare_weights(base, perturbed(base, scale), include=f"^{LAYER}$", device="cpu")
        rows = res.layer(LAYER)
        ax.plot(rows["index"], rows["cos"], lw=1.0, label=r"index-matched $|\cos\theta_i|$")
        ax.plot(rows["index"], rows["cos_window"], lw=1.4, label="spectral-window alignment")
        weak = ~rows["resolvable"].astype(bool)
        ax.scatter(
            rows["index"][weak],
            rows["cos"][weak],
            s=4,
            color="0.5",
            label="Wedin bound = 1",
            zorder=3,
        )
        ax.set_title(f"{LAYER}, noise {scale:.0%} of std", fontsize=9)
        ax.set_xlabel("index i")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("alignment with the pre-trained vector")
    axes[0].legend(fontsize=7, loc="lower left")
    s = rows["sigma_a"].to_numpy()
    axes[2].plot(rows["index"], s, lw=1.2)
    axes[2].set_yscale("log")
    axes[2].set_title(f"{LAYER}: singular values (pre-trained)", fontsize=9)
    axes[2].set_xlabel("index i")
    axes[2].grid(alpha=0.3)
    save_figure(fig, OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
