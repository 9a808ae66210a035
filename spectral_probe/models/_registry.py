"""Registry of model sources: ``source:rest`` spec strings dispatch through it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import ModelSpecError
from .loaded import LoadedModel

__all__ = [
    "ModelSource",
    "register_source",
    "get_source",
    "list_sources",
    "load_spec",
    "set_spec_loader",
]

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


SpecLoader = Callable[..., LoadedModel]
_SPEC_LOADER: list[SpecLoader] = []


def set_spec_loader(fn: SpecLoader) -> None:
    """Install :func:`spectral_probe.models.load_model` as the resolver of nested specs.

    A checkpoint's sidecar and ``textcls:`` name another model spec, so those loaders resolve
    specs themselves. They call :func:`load_spec`, which dispatches to the function the
    package installs here at import, so no loader module imports the package that imports it.
    """
    _SPEC_LOADER[:] = [fn]


def load_spec(spec: str, **kwargs: object) -> LoadedModel:
    """Load a nested model spec with the package's ``load_model`` (see :func:`set_spec_loader`)."""
    if not _SPEC_LOADER:
        raise RuntimeError("spectral_probe.models was not imported: no spec loader installed")
    return _SPEC_LOADER[0](spec, **kwargs)
