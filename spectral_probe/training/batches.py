"""Deterministic, resumable, shardable batches: the data order as a function of (seed, t).

Global batch ``t`` (0-based iteration) of a run is fixed by the seed alone:

* epoch ``e = t // P`` with ``P = floor(n / B)`` full batches per epoch (the last partial batch
  is dropped, so every step sees ``B`` samples: BSS needs ``b > k`` and DDP equal shards);
* the epoch's order is a permutation drawn from ``SeedSequence([seed, 7, e])``;
* batch ``t`` is positions ``[(t mod P) B, (t mod P + 1) B)`` of that order;
* under DDP with ``W`` ranks, rank ``r`` takes the ``r``-th of ``W`` equal slices of it, so the
  global batch is the same whatever ``W``;
* the augmentation of batch ``t`` on rank ``r`` runs under torch/Python RNGs seeded from
  ``SeedSequence([seed, 11, t, r])``, in the main process or in a worker alike.

Resuming at iteration ``t`` therefore needs no sampler state: the loader simply starts at
``t``. The model's own RNG (dropout) is separate and saved in the training state.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..data import TensorImageTransform
from ..errors import ConfigError, DataError

__all__ = [
    "BatchPlan",
    "seeded_rng",
    "train_loader",
    "eval_loader",
    "eval_subset",
    "TensorTenCrop",
    "fetch_batch",
]

_ORDER_STREAM = 7
_AUGMENT_STREAM = 11
_EVAL_STREAM = 13


class BatchPlan:
    """Which samples make up each global batch of a run, and each rank's share of it.

    Args:
        n: number of training samples.
        batch_size: global batch size ``B``.
        seed: the run's seed.
        rank: this process's rank.
        world: number of processes; must divide ``B``.
    """

    def __init__(
        self, n: int, batch_size: int, seed: int, *, rank: int = 0, world: int = 1
    ) -> None:
        if n < batch_size:
            raise DataError(
                f"expected at least batch_size = {batch_size} training images, found {n} "
                "(raise the sampling rate or lower --batch-size)"
            )
        if batch_size % world:
            raise ConfigError(
                f"expected a batch size divisible by the {world} DDP processes, found {batch_size}"
            )
        self.n = n
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world = world
        self.local_batch = batch_size // world
        self.per_epoch = n // batch_size
        self._cached: tuple[int, np.ndarray] | None = None

    def epoch_of(self, t: int) -> int:
        """The epoch global batch ``t`` belongs to."""
        return t // self.per_epoch

    def permutation(self, epoch: int) -> np.ndarray:
        """The sample order of ``epoch``: a permutation of ``range(n)``."""
        if self._cached is None or self._cached[0] != epoch:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, _ORDER_STREAM, epoch]))
            self._cached = (epoch, rng.permutation(self.n))
        return self._cached[1]

    def global_indices(self, t: int) -> np.ndarray:
        """The ``B`` sample indices of global batch ``t``."""
        pos = (t % self.per_epoch) * self.batch_size
        return self.permutation(self.epoch_of(t))[pos : pos + self.batch_size]

    def indices(self, t: int) -> np.ndarray:
        """This rank's slice of global batch ``t``."""
        lo = self.rank * self.local_batch
        return self.global_indices(t)[lo : lo + self.local_batch]

    def augment_seed(self, t: int) -> int:
        """Seed of the augmentation RNG of batch ``t`` on this rank."""
        ss = np.random.SeedSequence([self.seed, _AUGMENT_STREAM, t, self.rank])
        return int(ss.generate_state(1, np.uint64)[0] >> 1)


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Run the body with torch's CPU RNG and Python's ``random`` seeded, then restore both."""
    state = random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        random.seed(seed)
        try:
            yield
        finally:
            random.setstate(state)


def fetch_batch(
    dataset: Any, indices: np.ndarray, collate: Callable[[list[Any]], Any] | None
) -> Any:
    """``(inputs, targets)`` for ``indices``: one indexing call for in-memory tensor datasets
    (whose transform takes batches), else per sample and ``collate`` (default: torch's)."""
    if collate is None and getattr(dataset, "supports_batch_index", False):
        return dataset[indices]
    return (collate or default_collate)([dataset[int(i)] for i in indices])


class _TrainBatches(Dataset):
    """Map-style view: item ``i`` is the seeded, transformed batch of iteration ``start + i``."""

    def __init__(
        self,
        dataset: Any,
        plan: BatchPlan,
        start: int,
        stop: int,
        collate: Callable[[list[Any]], Any] | None,
    ) -> None:
        self.dataset, self.plan, self.start, self.stop, self.collate = (
            dataset,
            plan,
            start,
            stop,
            collate,
        )

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def __getitem__(self, i: int) -> Any:
        t = self.start + i
        with seeded_rng(self.plan.augment_seed(t)):
            return fetch_batch(self.dataset, self.plan.indices(t), self.collate)


class _EvalBatches(Dataset):
    """Map-style view: item ``i`` is the ``i``-th chunk of ``indices``."""

    def __init__(
        self,
        dataset: Any,
        indices: np.ndarray,
        batch_size: int,
        collate: Callable[[list[Any]], Any] | None,
    ) -> None:
        self.dataset, self.indices, self.batch_size, self.collate = (
            dataset,
            indices,
            batch_size,
            collate,
        )

    def __len__(self) -> int:
        return (len(self.indices) + self.batch_size - 1) // self.batch_size  # ceiling division

    def __getitem__(self, i: int) -> Any:
        chunk = self.indices[i * self.batch_size : (i + 1) * self.batch_size]
        return fetch_batch(self.dataset, chunk, self.collate)


def _loader(view: Dataset, num_workers: int, pin_memory: bool) -> DataLoader:
    extra: dict[str, Any] = {"prefetch_factor": 4} if num_workers > 0 else {}
    return DataLoader(
        view,
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        **extra,
    )


def train_loader(
    dataset: Any,
    plan: BatchPlan,
    start: int,
    stop: int,
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
    collate: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """Batches of iterations ``start .. stop - 1`` in order (see the module docstring)."""
    return _loader(_TrainBatches(dataset, plan, start, stop, collate), num_workers, pin_memory)


def eval_subset(n: int, cap: int | None, *, rank: int = 0, world: int = 1) -> np.ndarray:
    """The evaluated indices: all of ``range(n)``, or a fixed random ``cap`` of them (the same
    subset for every run and seed), then this rank's share ``[rank::world]``."""
    idx = np.arange(n)
    if cap is not None and cap < n:
        rng = np.random.default_rng(np.random.SeedSequence([0, _EVAL_STREAM, n]))
        idx = np.sort(rng.permutation(n)[:cap])
    return idx[rank::world]


def eval_loader(
    dataset: Any,
    indices: np.ndarray,
    batch_size: int,
    *,
    num_workers: int = 0,
    pin_memory: bool = False,
    collate: Callable[[list[Any]], Any] | None = None,
) -> DataLoader:
    """Sequential batches over ``indices`` (no shuffling, no augmentation)."""
    return _loader(_EvalBatches(dataset, indices, batch_size, collate), num_workers, pin_memory)


class TensorTenCrop(torch.nn.Module):
    """Ten crops of in-memory ``uint8`` batches: ``(B, C, H, W)`` -> ``(B, 10, 3, S, S)``.

    Resize to ``resize``² and normalise (as :class:`~spectral_probe.data.TensorImageTransform`),
    then the four corner crops and the centre crop of side ``size``, and the same five of the
    horizontally flipped image (torchvision's ``TenCrop`` order). The paper sums the logits.
    """

    batched = True

    def __init__(
        self,
        size: int,
        resize: int,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        interpolation: str = "bilinear",
    ) -> None:
        super().__init__()
        if resize < size:
            raise ConfigError(f"expected resize >= crop size {size}, found {resize}")
        self.size = size
        self.resize = TensorImageTransform(resize, mean, std, interpolation=interpolation)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        single = images.ndim == 3
        x = self.resize(images.unsqueeze(0) if single else images)
        s, r = self.size, x.shape[-1]
        c = (r - s) // 2
        offsets = [(0, 0), (0, r - s), (r - s, 0), (r - s, r - s), (c, c)]
        crops = [x[..., i : i + s, j : j + s] for i, j in offsets]
        flipped = x.flip(-1)
        crops += [flipped[..., i : i + s, j : j + s] for i, j in offsets]
        out = torch.stack(crops, dim=1)
        return out[0] if single else out
