"""``FeatureReader``: how features are read, held in one object and checked once.

Every feature analysis (:func:`~spectral_probe.analysis.feature_spectrum`,
:func:`~spectral_probe.analysis.compare_features`,
:func:`~spectral_probe.transferability.rank_models`, the report) reads a model's features
the same way: a dataset (a spec, its split, a per-class sample or a random subset), batches
of a fixed size in a seeded order, each model's own preprocessing (or a common input size and
resizing filter), a pooling rule, a device and its precision. A :class:`FeatureReader` holds
those settings, validates them when it is built, and gives each model a
:class:`FeatureStream`: the model's hooks and its model-ready batches, iterated as
``{site: (b, d) float32 tensor}`` dicts. Every model read by one reader sees the same
samples in the same batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError, NonFiniteFeaturesError
from ..models import LoadedModel
from .feature_loader import FeatureLoader, make_feature_loader
from .features import POOLS, FeatureExtractor, FeatureSite, Pool, resolve_device

__all__ = ["FeatureReader", "FeatureStream", "ModelLike", "label_models"]

#: What the feature analyses accept as a model: a spec or checkpoint path, a loaded model or a module.
ModelLike = str | LoadedModel | nn.Module


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class FeatureReader:
    """The settings that say which samples are read and how, for every model alike.

    Args:
        data: a data spec (``fashion-mnist``, ``cub200:/data/CUB_200_2011``...) or a dataset.
        split: the split of a data spec; ``auto`` reads the held-out ``test`` split where the
            data has one (see :func:`~spectral_probe.data.load_dataset`).
        batch_size: samples per batch (the rows ``b`` of a batch feature matrix).
        max_batches: read at most this many batches per model.
        seed: seed of the per-class sample, the random subset and the batch order.
        image_size: input side in pixels (default: each model's own).
        interpolation: resizing filter, ``"bilinear"``, ``"bicubic"`` or ``"nearest"``, for
            every model (default: each model's own, e.g. bicubic for EfficientNet-Lite).
        pool: how maps and token sequences become vectors (``auto``, ``avg``, ``flatten``,
            ``cls``; see :mod:`spectral_probe.extract.features`).
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        amp: autocast the forward (default: on CUDA only).
        channels_last: image inputs and weights in channels_last (default: on CUDA only).
        num_workers: loader processes for image files.
        max_length: text: token sequences are truncated to this length.
        rate: sample this share (``0.15``, ``"15%"``) or count per class first (seeded).
        max_samples: then keep a seeded random subset of this many samples.

    Raises:
        ConfigError: a batch size, batch count, subset size, worker count, token length or
            pool outside its range, or an unknown device.
        DataError: an unknown interpolation or a non-positive image size.

    Example:
        >>> import torchvision
        >>> reader = FeatureReader("digits", split="test", batch_size=8, max_batches=2,
        ...                        image_size=32, device="cpu")
        >>> batches = reader.batches(torchvision.models.resnet18())
        >>> shapes = [tuple(f["penultimate"].shape) for f in batches]
        >>> shapes
        [(8, 512), (8, 512)]
    """

    data: Any
    split: str = "auto"
    batch_size: int = 48
    max_batches: int | None = None
    seed: int = 0
    image_size: int | None = None
    interpolation: str | None = None
    pool: Pool = "auto"
    device: str | torch.device | None = "auto"
    amp: bool | None = None
    channels_last: bool | None = None
    num_workers: int = 0
    max_length: int = 128
    rate: str | float | int | None = None
    max_samples: int | None = None

    def __post_init__(self) -> None:
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ConfigError(f"expected a batch size of at least 1, found {self.batch_size!r}")
        if self.max_batches is not None and (not _is_int(self.max_batches) or self.max_batches < 1):
            raise ConfigError(f"expected max_batches >= 1, found {self.max_batches}")
        if self.max_samples is not None and (not _is_int(self.max_samples) or self.max_samples < 2):
            raise ConfigError(f"expected max_samples >= 2, found {self.max_samples}")
        if not _is_int(self.seed):
            raise ConfigError(f"expected an integer seed, found {self.seed!r}")
        if self.image_size is not None and (not _is_int(self.image_size) or self.image_size < 1):
            raise DataError(f"expected a positive image size, found {self.image_size}")
        if self.interpolation is not None:
            from ..data.transforms import check_interpolation

            object.__setattr__(self, "interpolation", check_interpolation(self.interpolation))
        if self.pool not in POOLS:
            raise ConfigError(f"expected pool in {list(POOLS)}, found {self.pool!r}")
        if not _is_int(self.num_workers) or self.num_workers < 0:
            raise ConfigError(f"expected num_workers >= 0, found {self.num_workers!r}")
        if not _is_int(self.max_length) or self.max_length < 1:
            raise ConfigError(f"expected max_length >= 1, found {self.max_length!r}")
        resolve_device(self.device)

    @classmethod
    def of(
        cls, data: Any, defaults: Mapping[str, Any] | None = None, /, **settings: Any
    ) -> FeatureReader:
        """``data`` itself when it is a reader (``settings`` replaced), else a new reader.

        ``defaults`` are the caller's own defaults, used for a new reader only: an analysis
        that reads the training split by default passes ``{"split": "train"}``.
        """
        if isinstance(data, cls):
            return data.replace(**settings) if settings else data
        return cls(data, **{**(defaults or {}), **settings})

    def replace(self, **changes: Any) -> FeatureReader:
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    @cached_property
    def torch_device(self) -> torch.device:
        """The device features are computed on (``auto`` resolved)."""
        return resolve_device(self.device)

    @property
    def data_name(self) -> str:
        """The data as results name it: the spec, or the dataset's name."""
        if isinstance(self.data, str):
            return self.data
        return str(getattr(self.data, "name", type(self.data).__name__))

    @cached_property
    def dataset(self) -> Any:
        """The samples read: the split of the data, then the per-class sample and the subset.

        Loaded on first use and kept: every model read by this reader shares it.
        """
        from ..data import DataSpec, load_dataset, sample_per_class

        data = self.data
        dataset = load_dataset(data, self.split) if isinstance(data, (str, DataSpec)) else data
        if self.rate is not None:
            dataset = dataset.subset(
                sample_per_class(
                    dataset.targets,
                    self.rate,
                    seed=self.seed,
                    classes=getattr(dataset, "classes", None),
                )
            )
        if self.max_samples is not None and self.max_samples < len(dataset):
            rng = np.random.default_rng(self.seed)
            dataset = dataset.subset(np.sort(rng.permutation(len(dataset))[: self.max_samples]))
        return dataset

    @property
    def split_read(self) -> str:
        """The split actually read (``auto`` resolved by the dataset)."""
        return str(getattr(self.dataset, "split", self.split))

    def n_batches(self, *, every_sample: bool = False) -> int:
        """Batches each model gets: full ones up to ``max_batches``, or (``every_sample``)
        every sample, the last batch short."""
        n = len(self.dataset)
        if every_sample:
            return -(-n // self.batch_size)
        full = n // self.batch_size
        return full if self.max_batches is None else min(full, self.max_batches)

    def open(
        self,
        model: LoadedModel | nn.Module,
        layers: str | Sequence[str] | None = None,
        *,
        every_sample: bool = False,
        name: str | None = None,
        check_finite: bool = False,
    ) -> FeatureStream:
        """Hooks on ``model`` and its batches: see :class:`FeatureStream` (close it, or use it
        as a context manager)."""
        return FeatureStream(
            self, model, layers, every_sample=every_sample, name=name, check_finite=check_finite
        )

    def batches(
        self, model: LoadedModel | nn.Module, layers: str | Sequence[str] | None = None
    ) -> Iterator[dict[str, Tensor]]:
        """``{site: F}`` per batch for ``model``, ``F`` a ``(batch_size, d)`` float32 tensor on
        the device; the hooks are removed when the iteration ends."""
        with self.open(model, layers) as stream:
            yield from stream


class FeatureStream:
    """One model read under a :class:`FeatureReader`: ``len()`` batches of features.

    Iterating yields ``{site: (b, d) float32 tensor on the device}``, the sites in the order
    asked; :meth:`labelled` yields ``(features, labels)``. In the default mode every batch is
    full (``b = batch_size``: the last short one is dropped) and the batch order is seeded;
    with ``every_sample`` every sample is read once, in dataset order, the last batch short,
    and ``max_batches`` does not apply. With ``check_finite`` a batch holding NaN or Inf raises
    :class:`~spectral_probe.errors.NonFiniteFeaturesError` naming ``name``, the site and the batch.

    Raises:
        ConfigError: an unknown layer, or a modality mismatch between model and data.
        DataError: fewer samples than one full batch.
    """

    def __init__(
        self,
        reader: FeatureReader,
        model: LoadedModel | nn.Module,
        layers: str | Sequence[str] | None = None,
        *,
        every_sample: bool = False,
        name: str | None = None,
        check_finite: bool = False,
    ) -> None:
        self.reader = reader
        self.check_finite = check_finite
        device = reader.torch_device
        self.extractor = FeatureExtractor(
            model,
            layers,
            pool=reader.pool,
            device=device,
            amp=reader.amp,
            channels_last=reader.channels_last,
        )
        self.name = name or self.extractor.loaded.spec
        try:
            dataset = reader.dataset
            self.loader: FeatureLoader = make_feature_loader(
                self.extractor.loaded,
                dataset,
                reader.batch_size,
                device=device,
                image_size=reader.image_size,
                interpolation=reader.interpolation,
                shuffle=not every_sample,
                seed=reader.seed,
                drop_last=not every_sample,
                max_batches=None if every_sample else reader.max_batches,
                num_workers=reader.num_workers,
                max_length=reader.max_length,
                channels_last=self.extractor.channels_last,
            )
            if len(self.loader) == 0:  # checked after the loader, which checks the modality first
                raise DataError(
                    f"expected at least one full batch of {reader.batch_size} samples, found "
                    f"{len(dataset)} in {getattr(dataset, 'name', 'the data')}/{reader.split_read}; "
                    f"pass a smaller --batch-size (at most {max(2, len(dataset))})"
                )
        except BaseException:
            self.extractor.close()
            raise

    @property
    def loaded(self) -> LoadedModel:
        """The model read (a bare module is wrapped, its head found)."""
        return self.extractor.loaded

    @property
    def sites(self) -> list[FeatureSite]:
        """Where the features are read, in order."""
        return self.extractor.sites

    @property
    def image_size(self) -> int | None:
        """The input side the model gets (``None`` for text)."""
        loaded = self.loaded
        if loaded.modality == "text":
            return None
        if self.reader.image_size is not None:
            return int(self.reader.image_size)
        return int(loaded.preprocessing.input_size[-1]) if loaded.preprocessing else 224

    def describe(self) -> dict[str, Any]:
        """How this model was read: spec, sites, input size, filter, AMP, channels_last."""
        return {
            "spec": self.loaded.spec,
            "sites": {s.name: s.description for s in self.sites},
            "image_size": self.image_size,
            "interpolation": self.loader.interpolation,
            "amp": self.extractor.amp,
            "channels_last": self.extractor.channels_last,
        }

    def __len__(self) -> int:
        return len(self.loader)

    def labelled(self) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
        """``(features, labels)`` per batch; the labels as the loader gives them (on the CPU)."""
        for done, (inputs, labels) in enumerate(self.loader, start=1):
            feats = self.extractor(inputs)
            if self.check_finite:
                for site, f in feats.items():
                    if not bool(torch.isfinite(f).all()):
                        raise NonFiniteFeaturesError(
                            f"expected finite features, found NaN or Inf in {self.name} at "
                            f"{site!r}, batch {done}"
                        )
            yield feats, labels

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for feats, _ in self.labelled():
            yield feats

    def close(self) -> None:
        """Remove the hooks (idempotent)."""
        self.extractor.close()

    def __enter__(self) -> FeatureStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def label_models(
    models: ModelLike | Sequence[ModelLike] | Mapping[str, ModelLike],
    labels: Sequence[str] | None = None,
) -> list[tuple[str, ModelLike]]:
    """``[(label, model)]``: the mapping's keys, the given labels, or each model's spec.

    Identical labels (the same spec twice) get a suffix: ``spec``, ``spec #2``.

    Raises:
        ConfigError: no model, or a number of labels other than the number of models.
    """
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
    for name, model in pairs:
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name} #{seen[name]}", model))
    return out
