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
from torch import Tensor, nn

from ..data.spec import AUTO_SPLIT
from ..errors import ConfigError, DataError
from ..extract.feature_loader import make_feature_loader
from ..extract.features import FeatureExtractor, Pool, resolve_device
from ..models import LoadedModel, load_model
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

ModelLike = str | LoadedModel | nn.Module
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


def _labelled(
    models: ModelLike | Sequence[ModelLike] | Mapping[str, ModelLike], labels: Sequence[str] | None
) -> list[tuple[str, ModelLike]]:
    if isinstance(models, Mapping):
        pairs = [(str(k), v) for k, v in models.items()]
    else:
        items = [models] if isinstance(models, (str, LoadedModel, nn.Module)) else list(models)
        if labels is not None:
            if len(labels) != len(items):
                raise ConfigError(
                    f"expected one label per model ({len(items)}), found {len(labels)}"
                )
            names = [str(x) for x in labels]
        else:
            names = [
                m
                if isinstance(m, str)
                else m.spec
                if isinstance(m, LoadedModel)
                else type(m).__name__
                for m in items
            ]
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
        dataset = dataset.subset(
            sample_per_class(
                dataset.targets, rate, seed=seed, classes=getattr(dataset, "classes", None)
            )
        )
    return dataset


def feature_spectrum(
    models: ModelLike | Sequence[ModelLike] | Mapping[str, ModelLike],
    data: Any,
    *,
    split: str = AUTO_SPLIT,
    layers: str | Sequence[str] | None = None,
    batch_size: int = 48,
    rate: str | float | int | None = None,
    seed: int = 0,
    max_batches: int | None = None,
    image_size: int | None = None,
    interpolation: str | None = None,
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
        split: the split of a data spec. ``auto`` (default) reads the held-out ``test``
            split where the data has one (a set every model can be measured on, whichever
            share of the training set it was fine-tuned on) and every image of a single-folder
            image folder; ``meta["split"]`` names the split read.
        layers: module names, or ``None``/``"penultimate"`` for the pooled features.
        batch_size: rows ``b`` of each feature matrix (the paper: 48).
        rate: sample this share (``0.15``, ``"15%"``) or count per class first (seeded).
        seed: seed of the per-class sample and of the batch order.
        max_batches: analyse at most this many batches per model.
        image_size: input side in pixels (default: each model's own).
        interpolation: resizing filter, ``"bilinear"``, ``"bicubic"`` or ``"nearest"``, for
            every model (default: each model's own, e.g. bicubic for EfficientNet-Lite).
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
        DataError: bad data spec, split, rate, interpolation, or fewer samples than one batch.
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
    if interpolation is not None:
        from ..data.transforms import check_interpolation

        interpolation = check_interpolation(interpolation)
    pairs = _labelled(models, labels)
    dataset = _dataset(data, split, rate, seed)
    n_full = len(dataset) // batch_size
    per_model = n_full if max_batches is None else min(n_full, max_batches)
    total = per_model * len(pairs)
    dev = resolve_device(device)
    entries: list[Entry] = []
    timings: dict[str, Any] = {}
    done = 0
    started = time.perf_counter()
    for label, model in pairs:
        loaded = load_model(model, arch=arch) if isinstance(model, str) else model
        t0 = time.perf_counter()
        with FeatureExtractor(
            loaded, layers, pool=pool, device=dev, amp=amp, channels_last=channels_last
        ) as fx:
            loader = make_feature_loader(
                fx.loaded,
                dataset,
                batch_size,
                device=dev,
                image_size=image_size,
                interpolation=interpolation,
                seed=seed,
                max_batches=max_batches,
                num_workers=num_workers,
                max_length=max_length,
                channels_last=fx.channels_last,
            )
            if len(loader) == 0:  # checked after the loader, which checks the modality first
                raise DataError(
                    f"expected at least one full batch of {batch_size} samples, found {len(dataset)} in "
                    f"{getattr(dataset, 'name', 'the data')}/{getattr(dataset, 'split', split)}; "
                    f"pass a smaller --batch-size (at most {max(2, len(dataset))})"
                )
            mine = [
                Entry(
                    label,
                    s.name,
                    s.description,
                    BatchSpectra(what=f"{label} at {s.name}"),
                    StreamingGram(what=f"{label} at {s.name}") if dataset_spectrum else None,
                )
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
                "interpolation": loader.interpolation,
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
        "class_counts": np.bincount(
            np.asarray(dataset.targets, dtype=np.int64),
            minlength=len(getattr(dataset, "classes", [])),
        ).tolist(),
        "rate": None if rate is None else str(rate),
        "seed": seed,
        "batch_size": batch_size,
        "max_batches": max_batches,
        "interpolation": interpolation,
        "layers": None
        if layers is None
        else ([layers] if isinstance(layers, str) else list(layers)),
        "pool": pool,
        "center": center,
        "dataset_spectrum": dataset_spectrum,
        "ci": ci,
        "device": str(dev),
        "models": timings,
        "seconds": time.perf_counter() - started,
        "versions": {"spectral_probe": __version__, "torch": str(torch.__version__)},
    }
    return build_result(entries, meta, center=center, ci=ci)
