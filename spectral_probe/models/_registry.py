"""Registry of model sources: every spec string dispatches through it (:func:`load_model`).

``SOURCE:REST`` goes to the source registered as ``SOURCE`` (:func:`register_source`); a
checkpoint path goes to the registered checkpoint reader (:func:`register_checkpoint_format`).
Loaders that name another spec (a checkpoint's sidecar, ``textcls:``) call :func:`load_model`
from here, so no loader imports the package.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelSpecError
from .loaded import LoadedModel

__all__ = [
    "ModelSource",
    "register_source",
    "get_source",
    "list_sources",
    "register_checkpoint_format",
    "is_checkpoint_spec",
    "load_model",
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


FileLoader = Callable[..., LoadedModel]
_FILES: list[tuple[tuple[str, ...], FileLoader]] = []


def register_checkpoint_format(suffixes: tuple[str, ...]) -> Callable[[FileLoader], FileLoader]:
    """Decorator registering ``fn(path, arch=None) -> LoadedModel`` as the
    reader of checkpoint files: a spec that is a path with one of ``suffixes`` (or an existing
    file) dispatches to it. A checkpoint names its architecture by another spec, which its
    reader resolves with :func:`load_model`."""

    def deco(fn: FileLoader) -> FileLoader:
        _FILES[:] = [entry for entry in _FILES if entry[1] is not fn] + [(tuple(suffixes), fn)]
        return fn

    return deco


def is_checkpoint_spec(spec: str) -> bool:
    """Whether ``spec`` names a file rather than ``SOURCE:REST``."""
    source = spec.partition(":")[0]
    if ":" in spec and source in _SOURCES:
        return False
    suffixes = {s for entry in _FILES for s in entry[0]}
    return Path(spec).suffix in suffixes or Path(spec).exists()


def _file_loader(spec: str) -> FileLoader:
    suffix = Path(spec).suffix
    for suffixes, fn in reversed(_FILES):
        if suffix in suffixes:
            return fn
    if not _FILES:
        raise ModelSpecError(f"expected a model spec SOURCE:NAME, found the file {spec!r}")
    return _FILES[-1][1]  # an existing file of another suffix: the reader says what it is


def load_model(spec: str, *, arch: str | None = None, pretrained: bool = True) -> LoadedModel:
    """Resolve a model spec string to a :class:`LoadedModel` (on CPU, eval mode).

    Args:
        spec: ``torchvision:NAME[:WEIGHTS]``, ``timm:NAME[:pretrained]``, ``bundled:NAME``,
            ``hf:PATH_OR_ID``, or a checkpoint path (``.safetensors``/``.pt``/``.pth``/``.bin``).
        arch: for a checkpoint without a spectral-probe sidecar, the spec of its architecture.
        pretrained: ``False`` builds the architecture only (random initialisation).

    Example:
        >>> load_model("torchvision:resnet18", pretrained=False).head
        'fc'
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ModelSpecError(f"expected a model spec such as torchvision:resnet50, found {spec!r}")
    spec = spec.strip()
    if is_checkpoint_spec(spec):
        return _file_loader(spec)(spec, arch=arch)
    source, sep, rest = spec.partition(":")
    if not sep or not rest:
        known = ", ".join(s.name for s in list_sources())
        raise ModelSpecError(
            f"unknown model spec {spec!r}: expected SOURCE:NAME with SOURCE one of {known}, "
            "or a checkpoint path (.safetensors, .pt, .pth)"
        )
    return get_source(source).load(rest, pretrained)
