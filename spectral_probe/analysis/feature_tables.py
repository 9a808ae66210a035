"""The result of :func:`~spectral_probe.analysis.feature_spectrum`: tidy tables built from the
accumulated spectra, and combining results computed apart."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .._results import TidyResult, records, write_result_json, write_tables_csv
from ..errors import ConfigError
from ..spectral import effective_rank, stable_rank, tail_energy
from ._spectra import BatchSpectra, StreamingGram, aggregate_per_index, normalised_spectra

__all__ = ["FeatureSpectra", "combine_spectra", "FEATURE_SUMMARY_COLUMNS", "QUANTITIES"]


#: The per-batch quantities aggregated across batches (``spectrum["quantity"]``).
QUANTITIES = ("sigma", "sigma_norm", "energy")

FEATURE_SUMMARY_COLUMNS = {
    "model": "the model's label (its spec unless labels were given)",
    "layer": "'penultimate' (pooled features) or the module name",
    "site": "where the features were read",
    "d": "feature width",
    "batch_size": "rows b of each batch matrix",
    "k": "singular values per batch, min(b, d)",
    "n_batches": "batches analysed",
    "sigma1": "mean largest singular value over batches",
    "sigma_min": "mean smallest singular value over batches",
    "small_half_energy": "mean share of sum(sigma^2) held by the smaller half of the values",
    "stable_rank": "mean over batches of sum(sigma^2) / sigma_1^2",
    "effective_rank": "mean over batches of the entropy effective rank",
    "dataset_n": "samples N in the dataset-level spectrum",
    "dataset_sigma1": "largest singular value of the N x d feature matrix",
    "dataset_stable_rank": "stable rank of the N x d feature matrix",
    "dataset_effective_rank": "entropy effective rank of the N x d feature matrix",
}


@dataclass(frozen=True)
class FeatureSpectra(TidyResult):
    """Result of :func:`feature_spectrum`.

    Attributes:
        summary: one row per (model, layer), columns :data:`FEATURE_SUMMARY_COLUMNS`.
        spectrum: tidy, one row per (model, layer, quantity, index): the i-th value of
            ``quantity`` (:data:`QUANTITIES`) aggregated over batches: ``n``, ``mean``,
            ``std``, ``sem``, ``ci_low``, ``ci_high``, ``median``, ``min``, ``max``.
        batches: tidy, one row per (model, layer, batch, index): ``sigma``,
            ``sigma_norm``, ``energy``.
        dataset: tidy, one row per (model, layer, index): the dataset-level ``sigma``,
            ``eigenvalue`` (of the second-moment matrix :math:`X^\\top X / N`, or of the
            covariance with ``center=True``), ``sigma_norm``, ``energy``, ``cum_energy``.
            Empty when the dataset spectrum was skipped.
        meta: data, options, sites, timing and versions.
    """

    summary: pd.DataFrame
    spectrum: pd.DataFrame
    batches: pd.DataFrame
    dataset: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        """Model labels, in order."""
        return list(dict.fromkeys(self.summary["model"]))

    @property
    def layers(self) -> list[str]:
        """Layer names, in order."""
        return list(dict.fromkeys(self.summary["layer"]))

    def curve(self, model: str, layer: str | None = None, quantity: str = "sigma") -> pd.DataFrame:
        """The aggregated rows of one model (and layer; default: the first) and quantity."""
        if quantity not in QUANTITIES:
            raise KeyError(f"expected quantity in {QUANTITIES}, found {quantity!r}")
        layer = layer if layer is not None else self.layers[0]
        rows = self.spectrum[
            (self.spectrum["model"] == model)
            & (self.spectrum["layer"] == layer)
            & (self.spectrum["quantity"] == quantity)
        ]
        if rows.empty:
            raise KeyError(f"no spectrum for model {model!r} at layer {layer!r}")
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per (model, layer), the summary with its per-index arrays."""
        entries = []
        for row in records(self.summary):
            key = (self.spectrum["model"] == row["model"]) & (
                self.spectrum["layer"] == row["layer"]
            )
            spec = self.spectrum[key]
            row["spectrum"] = {
                q: {c: g[c].tolist() for c in ("mean", "std", "ci_low", "ci_high")}
                for q, g in spec.groupby("quantity", sort=False)
            }
            b = self.batches[
                (self.batches["model"] == row["model"]) & (self.batches["layer"] == row["layer"])
            ]
            row["batch_sigma"] = [g["sigma"].tolist() for _, g in b.groupby("batch", sort=True)]
            ds = self.dataset[
                (self.dataset["model"] == row["model"]) & (self.dataset["layer"] == row["layer"])
            ]
            row["dataset"] = {
                c: ds[c].tolist() for c in ("sigma", "eigenvalue", "sigma_norm", "energy")
            }
            entries.append(row)
        return {"meta": self.meta, "spectra": entries}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        return write_result_json(path, self.to_dict())

    #: ``to_frame()``: one row per (model, layer)
    main_table: ClassVar[str] = "summary"

    def tables(self) -> dict[str, pd.DataFrame]:
        """``summary``, ``spectrum``, ``batches``, ``dataset``."""
        return {
            "summary": self.summary,
            "spectrum": self.spectrum,
            "batches": self.batches,
            "dataset": self.dataset,
        }

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``summary.csv``, ``spectrum.csv``, ``batches.csv``, ``dataset.csv``."""
        return write_tables_csv(directory, self.tables())


@dataclass
class Entry:
    """The accumulators of one (model, layer)."""

    model: str
    layer: str
    site: str
    batches: BatchSpectra
    gram: StreamingGram | None


def _mean_over(values: np.ndarray, fn: Callable[[Tensor], float]) -> float:
    return (
        float(np.mean([fn(torch.from_numpy(row)) for row in values]))
        if len(values)
        else float("nan")
    )


def _frames(
    entry: Entry, *, center: bool, ci: float
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    values = entry.batches.values().numpy()
    n, k = values.shape
    ratio, energy = normalised_spectra(values)
    spectrum = []
    for quantity, arr in zip(QUANTITIES, (values, ratio, energy)):
        agg = aggregate_per_index(arr, ci)
        agg.insert(0, "quantity", quantity)
        spectrum.append(agg)
    spec = pd.concat(spectrum, ignore_index=True)
    batches = pd.DataFrame(
        {
            "batch": np.repeat(np.arange(1, n + 1), k),
            "index": np.tile(np.arange(1, k + 1), n),
            "sigma": values.reshape(-1),
            "sigma_norm": ratio.reshape(-1),
            "energy": energy.reshape(-1),
        }
    )
    shape = entry.batches.shape or (0, 0)
    row: dict[str, Any] = {
        "model": entry.model,
        "layer": entry.layer,
        "site": entry.site,
        "d": shape[1],
        "batch_size": shape[0],
        "k": k,
        "n_batches": n,
        "sigma1": float(values[:, 0].mean()) if n else float("nan"),
        "sigma_min": float(values[:, -1].mean()) if n else float("nan"),
        "small_half_energy": _mean_over(values, lambda s: tail_energy(s, 0.5)),
        "stable_rank": _mean_over(values, stable_rank),
        "effective_rank": _mean_over(values, effective_rank),
    }
    dataset = pd.DataFrame(
        columns=["index", "sigma", "eigenvalue", "sigma_norm", "energy", "cum_energy"]
    )
    if entry.gram is not None and entry.gram.n:
        lam = entry.gram.eigenvalues(center=center)
        s = lam.sqrt()
        denom = max(entry.gram.n - (1 if center else 0), 1)
        s_ratio, s_energy = normalised_spectra(s.numpy()[None, :])
        dataset = pd.DataFrame(
            {
                "index": np.arange(1, s.numel() + 1),
                "sigma": s.numpy(),
                "eigenvalue": lam.numpy() / denom,
                "sigma_norm": s_ratio[0],
                "energy": s_energy[0],
                "cum_energy": np.cumsum(s_energy[0]),
            }
        )
        row.update(
            dataset_n=entry.gram.n,
            dataset_sigma1=float(s[0]),
            dataset_stable_rank=stable_rank(s),
            dataset_effective_rank=effective_rank(s),
        )
    for df in (spec, batches, dataset):
        df.insert(0, "layer", entry.layer)
        df.insert(0, "model", entry.model)
    return row, spec, batches, dataset


def build_result(
    entries: list[Entry], meta: dict[str, Any], *, center: bool, ci: float
) -> FeatureSpectra:
    rows, specs, batches, datasets = [], [], [], []
    for entry in entries:
        row, spec, batch, ds = _frames(entry, center=center, ci=ci)
        rows.append(row)
        specs.append(spec)
        batches.append(batch)
        datasets.append(ds)
    summary = pd.DataFrame(rows).reindex(columns=list(FEATURE_SUMMARY_COLUMNS))
    dataset = pd.concat([d for d in datasets if not d.empty] or datasets[:1], ignore_index=True)
    return FeatureSpectra(
        summary=summary,
        spectrum=pd.concat(specs, ignore_index=True),
        batches=pd.concat(batches, ignore_index=True),
        dataset=dataset,
        meta=meta,
    )


def combine_spectra(results: Mapping[str, FeatureSpectra]) -> FeatureSpectra:
    """Stack results computed separately (other data, rates, seeds) into one, e.g. for one figure.

    Each key names its result: a result with one model takes the key as its model label,
    one with several gets ``"KEY: MODEL"``. The combined ``meta`` keeps each part's under
    ``parts`` (and the first part's ``ci`` and ``center``, which the plots read).

    Example:
        >>> from spectral_probe.analysis import spectra_from_features
        >>> a = spectra_from_features([torch.eye(3)[:2]])
        >>> combine_spectra({"x": a, "y": a}).models
        ['x', 'y']
    """
    if not results:
        raise ConfigError("expected at least one result to combine, found none")
    tables: dict[str, list[pd.DataFrame]] = {
        "summary": [],
        "spectrum": [],
        "batches": [],
        "dataset": [],
    }
    for key, res in results.items():
        single = len(res.models) == 1
        rename = {m: str(key) if single else f"{key}: {m}" for m in res.models}
        for name, parts in tables.items():
            df = getattr(res, name).copy()
            if not df.empty:
                df["model"] = df["model"].map(rename)
            parts.append(df)
    first = next(iter(results.values()))
    meta = {
        "ci": first.meta.get("ci", 0.95),
        "center": first.meta.get("center", False),
        "parts": {str(k): r.meta for k, r in results.items()},
    }
    frames = {
        name: pd.concat([d for d in parts if not d.empty] or parts[:1], ignore_index=True)
        for name, parts in tables.items()
    }
    return FeatureSpectra(meta=meta, **frames)
