"""Registry of model sources: ``source:rest`` spec strings dispatch through it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ModelSpecError
from .loaded import LoadedModel

__all__ = ["ModelSource", "register_source", "get_source", "list_sources"]

Loader = Callable[[str, bool], LoadedModel]


@dataclass(frozen=True)
class ModelSource:
    """A named way to build models.

    Attributes:
        name: the spec prefix (``torchvision`` in ``torchvision:resnet50``).
        load: ``load(rest, pretrained)`` returns a :class:`LoadedModel`; with
            ``pretrained=False`` only the architecture is built (used when a checkpoint
            supplies the weights).
        help: one line for ``--help`` and the docs.
        example: an example spec.
    """

    name: str
    load: Loader
    help: str
    example: str


_SOURCES: dict[str, ModelSource] = {}


def register_source(name: str, *, help: str, example: str) -> Callable[[Loader], Loader]:
    """Decorator registering ``fn(rest, pretrained) -> LoadedModel`` as source ``name``."""

    def deco(fn: Loader) -> Loader:
        if name in _SOURCES:
            raise RuntimeError(f"model source {name!r} registered twice")
        _SOURCES[name] = ModelSource(name, fn, help, example)
        return fn

    return deco


def get_source(name: str) -> ModelSource:
    """The source registered as ``name``."""
    try:
        return _SOURCES[name]
    except KeyError:
        known = ", ".join(sorted(_SOURCES))
        raise ModelSpecError(
            f"unknown model source {name!r}: expected one of {known}, or a checkpoint path"
        ) from None


def list_sources() -> list[ModelSource]:
    """All registered sources, sorted by name."""
    return [_SOURCES[k] for k in sorted(_SOURCES)]
