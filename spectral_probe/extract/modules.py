"""Named modules of a network: what ``--layer`` can point at."""

from __future__ import annotations

import re

import pandas as pd
from torch import nn

from ..errors import ConfigError

__all__ = ["module_table", "resolve_module"]


def module_table(
    model: nn.Module, *, include: str | None = None, exclude: str | None = None
) -> pd.DataFrame:
    """One row per named submodule: ``name``, ``type``, ``params`` (own and below), ``leaf``."""
    try:
        inc = re.compile(include) if include else None
        exc = re.compile(exclude) if exclude else None
    except re.error as err:
        raise ConfigError(
            f"expected a regular expression, found {include or exclude!r} ({err})"
        ) from None
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
