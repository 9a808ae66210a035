"""The layer runner shared by the weight analyses: resolve a model, apply a function per layer.

:func:`compare_weights` (two models, layer pairs) and :func:`esd_layers` (one model) both load
models the same way and spread their per-layer work over threads the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, TypeVar

import torch
from torch import nn

from ..errors import ConfigError
from ..models import LoadedModel, load_model

__all__ = ["ModelLike", "Progress", "layer_cost", "resolve_model", "run_per_layer"]

ModelLike = nn.Module | LoadedModel | str
Progress = Callable[[int, int, str], None]
_T = TypeVar("_T")


def resolve_model(model: ModelLike, arch: str | None) -> tuple[nn.Module, str]:
    """The module of ``model`` and its spec (a name for a bare module).

    A state-dict file that names no architecture (no sidecar, no ``arch``) never comes here:
    the weight analyses read it as tensors (:mod:`spectral_probe.analysis._sources`).
    """
    if isinstance(model, str):
        model = load_model(model, arch=arch)
    if isinstance(model, LoadedModel):
        return model.model, model.spec
    if isinstance(model, nn.Module):
        return model, type(model).__name__
    raise TypeError(
        f"expected a model spec, LoadedModel or nn.Module, found {type(model).__name__}"
    )


def layer_cost(shape: Sequence[int]) -> int:
    """Relative cost of analysing one ``m × n`` matrix: ``m·n·min(m, n)`` (an SVD's flops, up
    to a constant); what a progress bar's estimate of the time left and the shards of
    :func:`~spectral_probe.analysis.compare_weights_sharded` are weighted by.

    Example:
        >>> layer_cost((4096, 1024))
        4294967296
    """
    m, n = int(shape[0]), int(shape[1])
    return m * n * min(m, n)


def _cost(shape: Sequence[int]) -> int:
    """Relative cost of one layer pair: the Gram product (s²l) and its eigensolve (~4s³)."""
    small, large = min(shape), max(shape)
    return small * small * (large + 4 * small)


def _matrix_shape(item: object) -> Sequence[int]:
    """Shape of an item's matrix: loaded (``WeightMatrix``) or not yet (``SourceMatrix``)."""
    shape = getattr(item, "matrix_shape", None)
    return shape if shape is not None else item.matrix.shape  # type: ignore[attr-defined]


def run_per_layer(
    pairs: Sequence[tuple[Any, Any]],
    fn: Callable[[Any], _T],
    dev: torch.device,
    workers: int | None,
    progress: Progress | None,
) -> list[_T]:
    """Apply ``fn`` to every pair; on CPU in ``workers`` threads of one BLAS thread each.

    LAPACK's eigensolvers scale poorly across threads on small matrices and collapse when the
    machine is oversubscribed, so many single-threaded layers in parallel beat one
    multi-threaded layer at a time. The costliest layers go first for load balance.

    A ``progress`` with an ``expect`` attribute is first given every layer's
    :func:`layer_cost` (``expect({name: cost})``), so that its estimate of the time left
    weighs layers by size rather than by count.
    """
    total = len(pairs)
    expect = getattr(progress, "expect", None)
    if expect is not None:  # a progress bar that weighs each layer by its cost
        expect({pair[0].name: layer_cost(_matrix_shape(pair[0])) for pair in pairs})
    workers = torch.get_num_threads() if workers is None else workers
    if workers < 1:
        raise ConfigError(f"expected workers >= 1, found {workers}")
    results: list[_T | None] = [None] * total
    if dev.type != "cpu" or workers == 1 or total < 2:
        for i, pair in enumerate(pairs):
            results[i] = fn(pair)
            if progress is not None:
                progress(i + 1, total, pair[0].name)
        return results  # type: ignore[return-value]
    order = sorted(range(total), key=lambda i: -_cost(_matrix_shape(pairs[i][0])))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=min(workers, total)) as pool:
            futures = {pool.submit(fn, pairs[i]): i for i in order}
            for done, future in enumerate(as_completed(futures), start=1):
                i = futures[future]
                results[i] = future.result()
                if progress is not None:
                    progress(done, total, pairs[i][0].name)
    finally:
        torch.set_num_threads(previous)
    return results  # type: ignore[return-value]
