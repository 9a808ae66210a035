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
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ConfigError
from ..extract.features import FeatureSite
from ..extract.reader import FeatureReader, ModelLike, label_models
from ..models import load_model
from ._spectra import BatchSpectra, StreamingGram
from .feature_tables import (
    FEATURE_SUMMARY_COLUMNS,
    QUANTITIES,
    Entry,
    FeatureSpectra,
    build_result,
    combine_spectra,
)

__all__ = [
    "FeatureSpectra",
    "feature_spectrum",
    "spectra_from_features",
    "combine_spectra",
    "FEATURE_SUMMARY_COLUMNS",
    "QUANTITIES",
]

Progress = Callable[[int, int, str], None]


def _check_common(batch_size: int | None, ci: float) -> None:
    if batch_size is not None and (
        isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 2
    ):
        raise ConfigError(
            f"expected a batch size of at least 2 (a batch spectrum needs two samples), found {batch_size!r}"
        )
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
        entry = Entry(
            label,
            layer,
            layer,
            BatchSpectra(what=what),
            StreamingGram(what=what) if dataset_spectrum else None,
        )
        for f in batches:
            entry.batches.update(f)
            if entry.gram is not None:
                entry.gram.update(f)
        if entry.batches.n_batches == 0:
            raise ConfigError(f"expected at least one feature matrix for {label}, found none")
        entries.append(entry)
    meta = {"source": "features", "center": center, "ci": ci}
    return build_result(entries, meta, center=center, ci=ci)


def _entries(label: str, sites: Sequence[FeatureSite], dataset_spectrum: bool) -> list[Entry]:
    return [
        Entry(
            label,
            s.name,
            s.description,
            BatchSpectra(what=f"{label} at {s.name}"),
            StreamingGram(what=f"{label} at {s.name}") if dataset_spectrum else None,
        )
        for s in sites
    ]


def _meta(
    reader: FeatureReader,
    layers: str | Sequence[str] | None,
    options: dict[str, Any],
    timings: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    from .. import __version__

    dataset = reader.dataset
    return {
        "data": reader.data_name,
        "split": reader.split_read,
        "n_samples": len(dataset),
        "class_counts": np.bincount(
            np.asarray(dataset.targets, dtype=np.int64),
            minlength=len(getattr(dataset, "classes", [])),
        ).tolist(),
        "rate": None if reader.rate is None else str(reader.rate),
        "seed": reader.seed,
        "batch_size": reader.batch_size,
        "max_batches": reader.max_batches,
        "interpolation": reader.interpolation,
        "layers": None
        if layers is None
        else ([layers] if isinstance(layers, str) else list(layers)),
        "pool": reader.pool,
        **options,
        "device": str(reader.torch_device),
        "models": timings,
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }


def feature_spectrum(
    models: ModelLike | Sequence[ModelLike] | Mapping[str, ModelLike],
    data: FeatureReader | Any,
    *,
    layers: str | Sequence[str] | None = None,
    center: bool = False,
    dataset_spectrum: bool = True,
    ci: float = 0.95,
    labels: Sequence[str] | None = None,
    arch: str | None = None,
    progress: Progress | None = None,
    **reading: Any,
) -> FeatureSpectra:
    """Singular values of batch feature matrices for each model, and the dataset-level spectrum.

    Args:
        models: model specs, :class:`~spectral_probe.models.LoadedModel`\\ s or modules, or
            ``{label: model}``. Specs are loaded one at a time and released after use.
        data: a :class:`~spectral_probe.extract.FeatureReader` (which samples, batches of
            ``b`` rows, preprocessing, pooling, device), or a data spec (``fashion-mnist``,
            ``cub200:/data/CUB_200_2011``...) or dataset read with the reader's defaults:
            ``split="auto"`` (the held-out ``test`` split where the data has one; a set every
            model can be measured on, whichever share of the training set it was fine-tuned
            on), ``batch_size=48`` (the paper's). ``meta["split"]`` names the split read.
        layers: module names, or ``None``/``"penultimate"`` for the pooled features.
        center: dataset-level spectrum of the centred features (PCA) instead of the raw ones.
        dataset_spectrum: accumulate the dataset-level spectrum (a ``d x d`` float64 Gram).
        ci: confidence level of the per-index intervals.
        labels: names for the models in the results (default: their specs).
        arch: architecture spec for state-dict files without a sidecar.
        progress: called as ``progress(done, total, model)`` after each batch.
        **reading: :class:`~spectral_probe.extract.FeatureReader` settings (``batch_size``,
            ``rate``, ``max_batches``, ``image_size``, ``device``...), replacing the reader's.

    Raises:
        DataError: bad data spec, split, rate, interpolation, or fewer samples than one batch.
        ConfigError: batch size below 2, unknown layer (with close matches), modality mismatch.
        NonFiniteFeaturesError: NaN/Inf features (the message names the model and batch).

    Example:
        >>> res = feature_spectrum("torchvision:resnet18", "digits", batch_size=16, max_batches=3,
        ...                        image_size=32, device="cpu")
        >>> res.summary[["model", "d", "k", "n_batches"]].values.tolist()
        [['torchvision:resnet18', 512, 16, 3]]
    """
    reader = FeatureReader.of(data, **reading)
    _check_common(reader.batch_size, ci)
    pairs = label_models(models, labels)
    total = reader.n_batches() * len(pairs)
    dev = reader.torch_device
    entries: list[Entry] = []
    timings: dict[str, Any] = {}
    done = 0
    started = time.perf_counter()
    for label, model in pairs:
        loaded = load_model(model, arch=arch) if isinstance(model, str) else model
        t0 = time.perf_counter()
        with reader.open(loaded, layers) as stream:
            mine = _entries(label, stream.sites, dataset_spectrum)
            for feats in stream:
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
                **stream.describe(),
                "seconds": seconds,
                "samples_per_second": len(stream) * reader.batch_size / seconds
                if seconds > 0
                else None,
            }
        entries.extend(mine)
        if isinstance(model, str):
            loaded.model.to("cpu")
            del loaded
    options = {"center": center, "dataset_spectrum": dataset_spectrum, "ci": ci}
    meta = _meta(reader, layers, options, timings, started)
    return build_result(entries, meta, center=center, ci=ci)
