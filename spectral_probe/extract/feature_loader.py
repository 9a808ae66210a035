"""Model-ready batches for feature extraction, and the loops that run an extractor over data.

:func:`make_feature_loader` preprocesses a dataset for one model (its mean/std, input size and
resizing filter; in-memory images on the device in one batched transform; text through its
tokenizer) in a fixed seeded order, so every model sees the same samples in the same batches.
:func:`iter_features` and :func:`extract_features` run a
:class:`~spectral_probe.extract.FeatureExtractor` over it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import ConfigError, DataError
from ..models import LoadedModel
from .features import FeatureExtractor, Pool, resolve_device

__all__ = ["FeatureLoader", "make_feature_loader", "iter_features", "extract_features"]


def _tokenize_collate(tokenizer: Any, max_length: int):  # type: ignore[no-untyped-def]
    def collate(items: list[tuple[Sequence[str], int]]) -> tuple[Any, Tensor]:
        texts = [item[0] if isinstance(item[0], (tuple, list)) else (item[0],) for item in items]
        segments = list(zip(*texts))
        encoded = tokenizer(
            *[list(seg) for seg in segments[:2]],
            padding=True,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        return dict(encoded), torch.as_tensor([item[1] for item in items], dtype=torch.int64)

    return collate


class FeatureLoader:
    """Model-ready batches ``(inputs, labels)`` on the device, in a fixed seeded order.

    Inputs are an image tensor ``(b, 3, S, S)`` (preprocessed, channels_last on request) or,
    for text, a dict of token tensors for ``model(**inputs)``. Build it with
    :func:`make_feature_loader`; ``len()`` is the number of batches it yields.
    ``interpolation`` is the resizing filter the images get (``None`` for text).
    """

    def __init__(
        self,
        loader: torch.utils.data.DataLoader,
        device: torch.device,
        *,
        transform: nn.Module | None = None,
        channels_last: bool = False,
        max_batches: int | None = None,
        interpolation: str | None = None,
    ) -> None:
        self.loader = loader
        self.device = device
        self.transform = transform.to(device) if transform is not None else None
        self.channels_last = channels_last
        self.max_batches = max_batches
        self.interpolation = interpolation

    def __len__(self) -> int:
        n = len(self.loader)
        return n if self.max_batches is None else min(n, self.max_batches)

    def __iter__(self) -> Iterator[tuple[Any, Tensor]]:
        non_blocking = self.device.type == "cuda"
        for i, (inputs, labels) in enumerate(self.loader):
            if self.max_batches is not None and i >= self.max_batches:
                break
            if isinstance(inputs, Mapping):
                yield (
                    {k: v.to(self.device, non_blocking=non_blocking) for k, v in inputs.items()},
                    labels,
                )
                continue
            x = inputs.to(self.device, non_blocking=non_blocking)
            if self.transform is not None:
                x = self.transform(x)
            if self.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, labels


def _in_memory(dataset: Any) -> bool:
    """Whether ``dataset`` holds uint8 images that can be gathered a whole batch at a time."""
    if not hasattr(dataset, "with_transform"):
        return False
    return bool(getattr(dataset.with_transform(None), "supports_batch_index", False))


def make_feature_loader(
    model: LoadedModel,
    dataset: Any,
    batch_size: int = 48,
    *,
    device: str | torch.device | None = "auto",
    image_size: int | None = None,
    interpolation: str | None = None,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = True,
    max_batches: int | None = None,
    num_workers: int = 0,
    max_length: int = 128,
    channels_last: bool | None = None,
) -> FeatureLoader:
    """Batches of ``dataset`` preprocessed for ``model`` (see :class:`FeatureLoader`).

    Every model given the same ``dataset``, ``batch_size``, ``shuffle`` and ``seed`` sees the
    same samples in the same batches. The last short batch is dropped (``drop_last``), so
    every feature matrix has exactly ``batch_size`` rows.

    Args:
        model: the model whose preprocessing (or tokenizer) to use.
        dataset: a dataset from :func:`~spectral_probe.data.load_dataset` (or a subset).
        batch_size: rows ``b`` of each feature matrix.
        device: where the batches go.
        image_size: side of the model's input (default: its ``preprocessing.input_size``).
        interpolation: the resizing filter, ``"bilinear"``, ``"bicubic"`` or ``"nearest"``
            (default: its ``preprocessing.interpolation``, e.g. bicubic for EfficientNet-Lite;
            bilinear for a model without preprocessing).
        shuffle: shuffle once with ``seed`` (class-sorted lists would otherwise give
            one-class batches).
        seed: the shuffle seed.
        drop_last: drop the last incomplete batch.
        max_batches: stop after this many batches.
        num_workers: loader processes for image files (in-memory data needs none).
        max_length: text: truncate token sequences to this length.
        channels_last: image batches in channels_last (default: on CUDA).

    Raises:
        ConfigError: a modality mismatch (text model, image data or the reverse) or a model
            without the tokenizer/preprocessing it needs.
        DataError: an interpolation the transforms do not have (the model's included).
    """
    from ..data import TensorImageTransform, image_transform, make_loader
    from ..data.transforms import check_interpolation

    dev = resolve_device(device)
    kind = getattr(dataset, "kind", "image")
    if kind != model.modality:
        raise ConfigError(
            f"expected {model.modality} data for {model.spec} (a {model.modality} model), "
            f"found {kind} data ({getattr(dataset, 'name', type(dataset).__name__)})"
        )
    if max_batches is not None and max_batches < 1:
        raise ConfigError(f"expected max_batches >= 1, found {max_batches}")
    common: dict[str, Any] = {
        "shuffle": shuffle,
        "seed": seed,
        "drop_last": drop_last,
        "num_workers": num_workers,
        "pin_memory": dev.type == "cuda",
    }
    if kind == "text":
        if model.tokenizer is None:
            why = model.metadata.get("tokenizer_error", "no tokenizer files")
            raise ConfigError(
                f"expected a tokenizer with the text model {model.spec}, found none ({why})"
            )
        loader = make_loader(
            dataset, batch_size, collate_fn=_tokenize_collate(model.tokenizer, max_length), **common
        )
        return FeatureLoader(loader, dev, max_batches=max_batches)
    pre = model.preprocessing
    if pre is None:
        from ..models import Preprocessing

        pre = Preprocessing()
    size = int(image_size) if image_size is not None else int(pre.input_size[-1])
    if size < 1:
        raise DataError(f"expected a positive image size, found {size}")
    if interpolation is not None:
        mode = check_interpolation(interpolation)
    else:
        try:
            mode = check_interpolation(pre.interpolation)
        except DataError as exc:
            raise DataError(
                f"{exc} in the preprocessing of {model.spec} (pass an interpolation)"
            ) from None
    cl = (dev.type == "cuda") if channels_last is None else channels_last
    if _in_memory(dataset):
        # in-memory uint8 images: gather the batch on the host, transform it on the device
        loader = make_loader(dataset.with_transform(None), batch_size, **common)
        transform = TensorImageTransform(size, pre.mean, pre.std, interpolation=mode)
        return FeatureLoader(
            loader,
            dev,
            transform=transform,
            channels_last=cl,
            max_batches=max_batches,
            interpolation=mode,
        )
    tf = image_transform(
        dataset,
        train=False,
        size=size,
        resize=max(size, round(size / pre.crop_pct)),
        mean=pre.mean,
        std=pre.std,
        interpolation=mode,
    )
    loader = make_loader(dataset.with_transform(tf), batch_size, **common)
    return FeatureLoader(loader, dev, channels_last=cl, max_batches=max_batches, interpolation=mode)


def iter_features(
    model: LoadedModel | FeatureExtractor,
    dataset: Any,
    layers: str | Sequence[str] | None = None,
    *,
    batch_size: int = 48,
    pool: Pool = "auto",
    device: str | torch.device | None = "auto",
    amp: bool | None = None,
    image_size: int | None = None,
    interpolation: str | None = None,
    shuffle: bool = True,
    seed: int = 0,
    max_batches: int | None = None,
    num_workers: int = 0,
    max_length: int = 128,
) -> Iterator[dict[str, Tensor]]:
    """Yield ``{site: F}`` per batch, ``F`` a ``(batch_size, d)`` float32 tensor on the device.

    Arguments as in :class:`FeatureExtractor` and :func:`make_feature_loader`.

    Example:
        >>> from spectral_probe.data import load_dataset
        >>> from spectral_probe.models import load_model
        >>> model = load_model("torchvision:resnet18", pretrained=False)
        >>> batches = iter_features(model, load_dataset("digits", "test"),
        ...                         batch_size=8, image_size=32, max_batches=2, device="cpu")
        >>> [f["penultimate"].shape for f in batches]
        [torch.Size([8, 512]), torch.Size([8, 512])]
    """
    own = not isinstance(model, FeatureExtractor)
    fx = (
        model
        if isinstance(model, FeatureExtractor)
        else FeatureExtractor(model, layers, pool=pool, device=device, amp=amp)
    )
    try:
        loader = make_feature_loader(
            fx.loaded,
            dataset,
            batch_size,
            device=fx.device,
            image_size=image_size,
            interpolation=interpolation,
            shuffle=shuffle,
            seed=seed,
            max_batches=max_batches,
            num_workers=num_workers,
            max_length=max_length,
            channels_last=fx.channels_last,
        )
        for inputs, _ in loader:
            yield fx(inputs)
    finally:
        if own:
            fx.close()


def extract_features(
    model: LoadedModel | FeatureExtractor,
    dataset: Any,
    layers: str | Sequence[str] | None = None,
    **kwargs: Any,
) -> dict[str, Tensor]:
    """All features at once: ``{site: (n_batches * batch_size, d)}`` float32 on the CPU.

    Convenient for small data and notebooks; for spectra of large data use
    :func:`~spectral_probe.analysis.feature_spectrum`, whose memory does not grow with N.
    Keyword arguments as in :func:`iter_features`.
    """
    parts: dict[str, list[Tensor]] = {}
    for feats in iter_features(model, dataset, layers, **kwargs):
        for name, f in feats.items():
            parts.setdefault(name, []).append(f.cpu())
    return {name: torch.cat(chunks) for name, chunks in parts.items()}
