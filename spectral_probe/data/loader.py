"""DataLoaders that take the fast path where a dataset offers one.

For in-memory tensor datasets (:class:`~spectral_probe.data.TensorImageDataset` and
subsets of it) the loader hands whole index batches to the dataset, which gathers the
batch with one indexing operation and transforms it at once; everything else goes through
an ordinary per-sample :class:`~torch.utils.data.DataLoader`. Both yield
``(inputs, labels)`` batches in the same layout.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from .._seed import torch_generator
from ..errors import DataError

__all__ = ["make_loader"]


def make_loader(
    dataset: Any,
    batch_size: int,
    *,
    shuffle: bool = False,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
    pin_memory: bool = False,
    collate_fn: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """A seeded DataLoader over ``dataset``, batched at the dataset when it supports it.

    Args:
        dataset: a dataset from :func:`~spectral_probe.data.load_dataset` (or a subset).
        batch_size: samples per batch.
        shuffle: reshuffle every epoch with a generator seeded by ``seed``.
        seed: the shuffle seed (the order is the same for the same seed).
        drop_last: drop the last incomplete batch.
        num_workers: worker processes (0 loads in the main process).
        pin_memory: pin batches for faster host-to-GPU copies.
        collate_fn: for per-sample datasets only (e.g. a tokenizer for text).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"expected a positive integer batch size, found {batch_size!r}")
    generator = torch_generator(seed)
    common: dict[str, Any] = {"num_workers": num_workers, "pin_memory": pin_memory}
    if num_workers > 0:
        common["persistent_workers"] = True
    if getattr(dataset, "supports_batch_index", False) and collate_fn is None:
        sampler = (
            RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        )
        batches = BatchSampler(sampler, batch_size, drop_last)
        return DataLoader(dataset, sampler=batches, batch_size=None, **common)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        drop_last=drop_last,
        collate_fn=collate_fn,
        **common,
    )
