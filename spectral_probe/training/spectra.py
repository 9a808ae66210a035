"""Feature spectra of fine-tuned runs, with and without BSS (the data of Figure 3b,c).

The runs' checkpoints (``model.safetensors``) go through
:func:`~spectral_probe.analysis.feature_spectrum` on the test split, in batches of the
runs' own batch size; plotting then takes the result
(:func:`~spectral_probe.training.figures.plot_spectra_with_without_bss`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError

__all__ = ["runs_feature_spectra", "bss_pairs", "LABEL_SEP"]

#: models are labelled ``"METHOD @ RATE"`` in the result
LABEL_SEP = " @ "


def bss_pairs(runs: pd.DataFrame, dataset: str | None = None) -> pd.DataFrame:
    """The finished runs of every method ``m`` that has an ``m+bss`` partner at the same rate.

    One run (the lowest seed) per (method, rate), for ``dataset`` (default: the first one).
    Columns as :func:`~spectral_probe.training.collect_runs`.
    """
    if runs.empty:
        return runs
    done = runs[runs["status"] == "finished"]
    dataset = dataset or str(done["dataset"].iloc[0])
    done = done[done["dataset"] == dataset].sort_values("seed")
    methods = set(done["method"])
    partners = {m for m in methods if f"{m}+bss" in methods} | {
        f"{m}+bss" for m in methods if f"{m}+bss" in methods
    }
    chosen = done[done["method"].isin(partners)].groupby(["method", "rate"], sort=False).head(1)
    rates = set(chosen.loc[chosen["method"].str.endswith("+bss"), "rate"])
    return chosen[chosen["rate"].isin(rates)].reset_index(drop=True)


def runs_feature_spectra(
    runs: pd.DataFrame | Sequence[str | Path],
    *,
    dataset: str | None = None,
    split: str = "test",
    max_batches: int | None = 10,
    batch_size: int | None = None,
    device: str = "auto",
) -> Any:
    """Feature spectra of the runs' checkpoints, labelled ``"METHOD @ RATE"``.

    Args:
        runs: :func:`~spectral_probe.training.collect_runs` rows, or run directories.
        dataset: restrict to this dataset (default: the first).
        split: the split measured (``test``: what every rate can be compared on).
        max_batches: batches per model.
        batch_size: rows of each feature matrix (default: the runs' training batch size).
        device: ``auto``, ``cpu`` or ``cuda``.

    Returns:
        A :class:`~spectral_probe.analysis.FeatureSpectra`, or ``None`` when no method has
        runs both with and without BSS.
    """
    from ..analysis import feature_spectrum
    from .aggregate import collect_runs

    if not isinstance(runs, pd.DataFrame):
        frames = [collect_runs(Path(p)) for p in runs]
        runs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    pairs = bss_pairs(runs, dataset)
    if pairs.empty:
        return None
    data = str(pairs["data"].iloc[0])
    sizes = set(pairs["image_size"])
    if len(sizes) > 1:
        raise ConfigError(f"expected runs trained at one image size, found {sorted(sizes)}")
    models = {
        f"{row.method}{LABEL_SEP}{row.rate}": str(Path(row.path) / "model.safetensors")
        for row in pairs.itertuples()
    }
    b = int(batch_size or pairs["batch_size"].iloc[0])
    return feature_spectrum(
        models,
        data,
        split=split,
        batch_size=b,
        max_batches=max_batches,
        image_size=int(sizes.pop()),
        dataset_spectrum=False,
        device=device,
    )
