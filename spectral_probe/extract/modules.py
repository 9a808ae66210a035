"""Named modules of a network: what ``--layer`` can point at."""

from __future__ import annotations

import math
import re

import pandas as pd
from torch import nn

from ..errors import ConfigError
from ..sources import TensorSource

__all__ = ["module_table", "source_module_table", "resolve_module"]


def module_table(
    model: nn.Module, *, include: str | None = None, exclude: str | None = None
) -> pd.DataFrame:
    """One row per named submodule: ``name``, ``type``, ``params`` (own and below), ``leaf``."""
    inc, exc = _filters(include, exclude)
    rows = []
    for name, mod in model.named_modules():
        if not name or (inc and not inc.search(name)) or (exc and exc.search(name)):
            continue
        rows.append(
            {
                "name": name,
                "type": type(mod).__name__,
                "params": sum(p.numel() for p in mod.parameters()),
                "leaf": next(mod.children(), None) is None,
            }
        )
    return pd.DataFrame(rows, columns=["name", "type", "params", "leaf"])


def source_module_table(
    source: TensorSource, *, include: str | None = None, exclude: str | None = None
) -> pd.DataFrame:
    """:func:`module_table` of weights read as tensors, without building a model.

    The modules are the dotted prefixes of the tensor names, in the source's depth order.
    ``type`` is the layer type read from a weight's shape (``Conv2d``, ``Linear``...; see
    :func:`~spectral_probe.extract.iter_source_matrices`), empty for a module that owns no
    weight matrix; ``params`` counts the elements of every tensor under the module (a state
    dict does not tell parameters from buffers).

    Example:
        >>> from torch import nn
        >>> from spectral_probe.sources import StateDictSource
        >>> net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        >>> source_module_table(StateDictSource(net.state_dict(), "net")).values.tolist()
        [['0', 'Conv2d', 112, True], ['1', '', 17, True]]
    """
    from .weights import SOURCE_KINDS, iter_source_matrices

    inc, exc = _filters(include, exclude)
    types = {
        sm.tensor.rpartition(".")[0]: sm.module_type
        for sm in iter_source_matrices(source, kinds=SOURCE_KINDS)
    }
    params: dict[str, int] = {}
    for tensor in source.names():
        parts = tensor.split(".")[:-1]
        numel = math.prod(source.shape(tensor))
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            params[name] = params.get(name, 0) + numel
    parents = {name.rpartition(".")[0] for name in params}
    rows = [
        {"name": name, "type": types.get(name, ""), "params": n, "leaf": name not in parents}
        for name, n in params.items()
        if not (inc and not inc.search(name)) and not (exc and exc.search(name))
    ]
    return pd.DataFrame(rows, columns=["name", "type", "params", "leaf"])


def _filters(
    include: str | None, exclude: str | None
) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
    try:
        inc = re.compile(include) if include else None
        exc = re.compile(exclude) if exclude else None
    except re.error as err:
        raise ConfigError(
            f"expected a regular expression, found {include or exclude!r} ({err})"
        ) from None
    return inc, exc


def resolve_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name``; an unknown name lists the closest valid ones."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        import difflib

        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = (
            f"; close matches: {', '.join(close)}"
            if close
            else "; list them with `spectral-probe layers MODEL --modules`"
        )
        raise ConfigError(
            f"expected a module name of {type(model).__name__}, found {name!r}{hint}"
        ) from None
