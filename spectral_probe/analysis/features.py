r"""``feature_spectrum``: singular values of batch feature matrices, per model (paper Figure 1c/d, 3b/c).

For each model, each batch of ``b`` samples gives a feature matrix :math:`F \in \mathbb{R}^{b
\times d}` and its ``k = min(b, d)`` singular values :math:`\sigma_1 \ge \dots \ge \sigma_k`
(fixed ``b``: the last short batch is dropped). Across batches, the i-th singular value gets a
mean, a standard deviation and a confidence interval; so do the normalised variants
:math:`\sigma_i / \sigma_1` and the energy fraction :math:`\sigma_i^2 / \sum_j \sigma_j^2`,
which compare models whose features differ in scale. The dataset-level spectrum is that of
the :math:`N \times d` matrix of all features, from a streaming Gram accumulation whose
memory does not grow with :math:`N` (:class:`StreamingGram`). Every model sees the same
samples in the same batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from ..extract.features import FeatureExtractor, Pool, make_feature_loader, resolve_device
from ..models import LoadedModel, load_model
from ..spectral import effective_rank, stable_rank, tail_energy
from ._results import records, write_result_json, write_tables_csv
from ._spectra import BatchSpectra, StreamingGram, aggregate_per_index, normalised_spectra

__all__ = [
    "FeatureSpectra",
    "feature_spectrum",
    "spectra_from_features",
    "combine_spectra",
    "FEATURE_SUMMARY_COLUMNS",
    "QUANTITIES",
]

ModelLike = str | LoadedModel | nn.Module
Progress = Callable[[int, int, str], None]

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
class FeatureSpectra:
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
            (self.spectrum["model"] == model) & (self.spectrum["layer"] == layer) & (self.spectrum["quantity"] == quantity)
        ]
        if rows.empty:
            raise KeyError(f"no spectrum for model {model!r} at layer {layer!r}")
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: per (model, layer), the summary with its per-index arrays."""
        entries = []
        for row in records(self.summary):
            key = (self.spectrum["model"] == row["model"]) & (self.spectrum["layer"] == row["layer"])
            spec = self.spectrum[key]
            row["spectrum"] = {
                q: {c: g[c].tolist() for c in ("mean", "std", "ci_low", "ci_high")}
                for q, g in spec.groupby("quantity", sort=False)
            }
            b = self.batches[(self.batches["model"] == row["model"]) & (self.batches["layer"] == row["layer"])]
            row["batch_sigma"] = [g["sigma"].tolist() for _, g in b.groupby("batch", sort=True)]
            ds = self.dataset[(self.dataset["model"] == row["model"]) & (self.dataset["layer"] == row["layer"])]
            row["dataset"] = {c: ds[c].tolist() for c in ("sigma", "eigenvalue", "sigma_norm", "energy")}
            entries.append(row)
        return {"meta": self.meta, "spectra": entries}

    def to_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (atomically)."""
        return write_result_json(path, self.to_dict())

    def to_csv(self, directory: str | Path) -> list[Path]:
        """Write ``summary.csv``, ``spectrum.csv``, ``batches.csv``, ``dataset.csv``."""
        return write_tables_csv(
            directory,
            {"summary": self.summary, "spectrum": self.spectrum, "batches": self.batches, "dataset": self.dataset},
        )


@dataclass
class _Entry:
    model: str
    layer: str
    site: str
    batches: BatchSpectra
    gram: StreamingGram | None


def _mean_over(values: np.ndarray, fn: Callable[[Tensor], float]) -> float:
    return float(np.mean([fn(torch.from_numpy(row)) for row in values])) if len(values) else float("nan")


def _frames(entry: _Entry, *, center: bool, ci: float) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
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
    dataset = pd.DataFrame(columns=["index", "sigma", "eigenvalue", "sigma_norm", "energy", "cum_energy"])
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


def _result(entries: list[_Entry], meta: dict[str, Any], *, center: bool, ci: float) -> FeatureSpectra:
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
        >>> a = spectra_from_features([torch.eye(3)[:2]])
        >>> combine_spectra({"x": a, "y": a}).models
        ['x', 'y']
    """
    if not results:
        raise ConfigError("expected at least one result to combine, found none")
    tables: dict[str, list[pd.DataFrame]] = {"summary": [], "spectrum": [], "batches": [], "dataset": []}
    for key, res in results.items():
        single = len(res.models) == 1
        rename = {m: str(key) if single else f"{key}: {m}" for m in res.models}
        for name, parts in tables.items():
            df = getattr(res, name).copy()
            if not df.empty:
                df["model"] = df["model"].map(rename)
            parts.append(df)
    first = next(iter(results.values()))
    meta = {"ci": first.meta.get("ci", 0.95), "center": first.meta.get("center", False),
            "parts": {str(k): r.meta for k, r in results.items()}}
    frames = {name: pd.concat([d for d in parts if not d.empty] or parts[:1], ignore_index=True)
              for name, parts in tables.items()}
    return FeatureSpectra(meta=meta, **frames)


def _check_common(batch_size: int | None, ci: float) -> None:
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2):
        raise ConfigError(f"expected a batch size of at least 2 (a batch spectrum needs two samples), found {batch_size!r}")
    if not 0.0 < ci < 1.0:
        raise ConfigError(f"expected a confidence level in (0, 1), found {ci}")


def spectra_from_features(
    features: Mapping[str, Iterable[Tensor]] | Iterable[Tensor],
    *,
    layer: str = "features",
    center: bool = False,
    dataset_spectrum: bool = True,
    ci: float = 0.95,
) -> FeatureSpectra:
    """Spectra of feature matrices you already have (each a ``(b, d)`` tensor).

    Args:
        features: batches of one model, or ``{label: batches}`` for several.
        layer: the layer name recorded in the results.
        center: dataset-level spectrum of the centred features (PCA) instead of the raw ones.
        dataset_spectrum: also accumulate the dataset-level spectrum.
        ci: confidence level of the per-index intervals.

    Example:
        >>> res = spectra_from_features([torch.eye(4)[:3], 2 * torch.eye(4)[:3]])
        >>> res.curve("features")["mean"].tolist()
        [1.5, 1.5, 1.5]
    """
    _check_common(None, ci)
    groups = dict(features) if isinstance(features, Mapping) else {"features": features}
    entries = []
    for label, batches in groups.items():
        what = f"{label} at {layer}"
        entry = _Entry(label, layer, layer, BatchSpectra(what=what), StreamingGram(what=what) if dataset_spectrum else None)
        for f in batches:
            entry.batches.update(f)
            if entry.gram is not None:
                entry.gram.update(f)
        if entry.batches.n_batches == 0:
            raise ConfigError(f"expected at least one feature matrix for {label}, found none")
        entries.append(entry)
    meta = {"source": "features", "center": center, "ci": ci}
    return _result(entries, meta, center=center, ci=ci)


def _labelled(models: ModelLike | Sequence[ModelLike] | Mapping[str, ModelLike], labels: Sequence[str] | None) -> list[tuple[str, ModelLike]]:
    if isinstance(models, Mapping):
        pairs = [(str(k), v) for k, v in models.items()]
    else:
        items = [models] if isinstance(models, (str, LoadedModel, nn.Module)) else list(models)
        if labels is not None:
            if len(labels) != len(items):
                raise ConfigError(f"expected one label per model ({len(items)}), found {len(labels)}")
            names = [str(x) for x in labels]
        else:
            names = [m if isinstance(m, str) else m.spec if isinstance(m, LoadedModel) else type(m).__name__ for m in items]
        pairs = list(zip(names, items))
    if not pairs:
        raise ConfigError("expected at least one model, found none")
    seen: dict[str, int] = {}
    out = []
    for name, model in pairs:  # identical labels (the same spec twice) get a suffix
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name} #{seen[name]}", model))
    return out


def _input_size(model: LoadedModel, image_size: int | None) -> int | None:
    if model.modality == "text":
        return None
    if image_size is not None:
        return int(image_size)
    return int(model.preprocessing.input_size[-1]) if model.preprocessing else 224


def _dataset(data: Any, split: str, rate: Any, seed: int) -> Any:
    from ..data import DataSpec, load_dataset, sample_per_class

    dataset = load_dataset(data, split) if isinstance(data, (str, DataSpec)) else data
    if rate is not None:
        dataset = dataset.subset(sample_per_class(dataset.targets, rate, seed=seed, classes=getattr(dataset, "classes", None)))
    return dataset


def feature_spectrum(
    models: ModelLike | Sequence[ModelLike] | Mapping[str, ModelLike],
    data: Any,
    *,
    split: str = "test",
    layers: str | Sequence[str] | None = None,
    batch_size: int = 48,
    rate: str | float | int | None = None,
    seed: int = 0,
    max_batches: int | None = None,
    image_size: int | None = None,
    pool: Pool = "auto",
    center: bool = False,
    dataset_spectrum: bool = True,
    ci: float = 0.95,
    labels: Sequence[str] | None = None,
    arch: str | None = None,
    device: str | torch.device | None = "auto",
    amp: bool | None = None,
    channels_last: bool | None = None,
    num_workers: int = 0,
    max_length: int = 128,
    progress: Progress | None = None,
) -> FeatureSpectra:
    """Singular values of batch feature matrices for each model, and the dataset-level spectrum.

    Args:
        models: model specs, :class:`~spectral_probe.models.LoadedModel`\\ s or modules, or
            ``{label: model}``. Specs are loaded one at a time and released after use.
        data: a data spec (``fashion-mnist``, ``cub200:/data/CUB_200_2011``...) or a dataset.
        split: the split of a data spec (``test`` by default: a held-out set every model
            can be measured on, whichever share of the training set it was fine-tuned on).
        layers: module names, or ``None``/``"penultimate"`` for the pooled features.
        batch_size: rows ``b`` of each feature matrix (the paper: 48).
        rate: sample this share (``0.15``, ``"15%"``) or count per class first (seeded).
        seed: seed of the per-class sample and of the batch order.
        max_batches: analyse at most this many batches per model.
        image_size: input side in pixels (default: each model's own).
        pool: how maps and token sequences become vectors (``auto``, ``avg``, ``flatten``, ``cls``).
        center: dataset-level spectrum of the centred features (PCA) instead of the raw ones.
        dataset_spectrum: accumulate the dataset-level spectrum (a ``d x d`` float64 Gram).
        ci: confidence level of the per-index intervals.
        labels: names for the models in the results (default: their specs).
        arch: architecture spec for state-dict files without a sidecar.
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        amp: autocast the forward (default: on CUDA only).
        channels_last: image inputs and weights in channels_last (default: on CUDA only).
        num_workers: loader processes for image files.
        max_length: text: token sequences are truncated to this length.
        progress: called as ``progress(done, total, model)`` after each batch.

    Raises:
        DataError: bad data spec, split, rate, or fewer samples than one batch.
        ConfigError: batch size below 2, unknown layer (with close matches), modality mismatch.
        NonFiniteFeaturesError: NaN/Inf features (the message names the model and batch).

    Example:
        >>> res = feature_spectrum("torchvision:resnet18", "digits", batch_size=16, max_batches=3,
        ...                        image_size=32, device="cpu")
        >>> res.summary[["model", "d", "k", "n_batches"]].values.tolist()
        [['torchvision:resnet18', 512, 16, 3]]
    """
    _check_common(batch_size, ci)
    if max_batches is not None and max_batches < 1:
        raise ConfigError(f"expected max_batches >= 1, found {max_batches}")
    pairs = _labelled(models, labels)
    dataset = _dataset(data, split, rate, seed)
    n_full = len(dataset) // batch_size
    per_model = n_full if max_batches is None else min(n_full, max_batches)
    total = per_model * len(pairs)
    dev = resolve_device(device)
    entries: list[_Entry] = []
    timings: dict[str, Any] = {}
    done = 0
    started = time.perf_counter()
    for label, model in pairs:
        loaded = load_model(model, arch=arch) if isinstance(model, str) else model
        t0 = time.perf_counter()
        with FeatureExtractor(loaded, layers, pool=pool, device=dev, amp=amp, channels_last=channels_last) as fx:
            loader = make_feature_loader(
                fx.loaded, dataset, batch_size, device=dev, image_size=image_size, seed=seed,
                max_batches=max_batches, num_workers=num_workers, max_length=max_length,
                channels_last=fx.channels_last,
            )
            if len(loader) == 0:  # checked after the loader, which checks the modality first
                raise DataError(
                    f"expected at least one full batch of {batch_size} samples, found {len(dataset)} in "
                    f"{getattr(dataset, 'name', 'the data')}/{getattr(dataset, 'split', split)}"
                )
            mine = [
                _Entry(label, s.name, s.description, BatchSpectra(what=f"{label} at {s.name}"),
                       StreamingGram(what=f"{label} at {s.name}") if dataset_spectrum else None)
                for s in fx.sites
            ]
            for inputs, _ in loader:
                feats = fx(inputs)
                for entry in mine:
                    f = feats[entry.layer]
                    entry.batches.update(f)
                    if entry.gram is not None:
                        entry.gram.update(f)
                done += 1
                if progress is not None:
                    progress(done, total, label)
            for entry in mine:
                entry.batches.values()  # finish on the device (raises on NaN features)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            seconds = time.perf_counter() - t0
            timings[label] = {
                "spec": fx.loaded.spec,
                "sites": {s.name: s.description for s in fx.sites},
                "image_size": _input_size(fx.loaded, image_size),
                "amp": fx.amp,
                "channels_last": fx.channels_last,
                "seconds": seconds,
                "samples_per_second": len(loader) * batch_size / seconds if seconds > 0 else None,
            }
        entries.extend(mine)
        if isinstance(model, str):
            loaded.model.to("cpu")
            del loaded
    from .. import __version__

    meta = {
        "data": str(data) if isinstance(data, str) else getattr(data, "name", type(data).__name__),
        "split": getattr(dataset, "split", split),
        "n_samples": len(dataset),
        "class_counts": np.bincount(np.asarray(dataset.targets, dtype=np.int64),
                                    minlength=len(getattr(dataset, "classes", []))).tolist(),
        "rate": None if rate is None else str(rate),
        "seed": seed,
        "batch_size": batch_size,
        "max_batches": max_batches,
        "layers": None if layers is None else ([layers] if isinstance(layers, str) else list(layers)),
        "pool": pool,
        "center": center,
        "dataset_spectrum": dataset_spectrum,
        "ci": ci,
        "device": str(dev),
        "models": timings,
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": torch.__version__},
    }
    return _result(entries, meta, center=center, ci=ci)
