"""Data spec strings and the dataset registry.

One string names a dataset everywhere (CLI ``--data``, configs, reports)::

    NAME[:ROOT]        e.g.  cub200:/data/CUB_200_2011   fashion-mnist   glue-sst2:/data/glue/SST-2

``NAME`` is a registered dataset (see :func:`list_datasets`), ``ROOT`` a local directory.
A class list in square brackets right after the name keeps only those classes, relabelled
``0..k-1`` in the order given: ``fashion-mnist[0,2,4,6]``,
``fashion-mnist[T-shirt/top,Pullover,Coat,Shirt]``, ``imagefolder[cat,dog]:/data/pets``
(see :func:`load_dataset` for how an entry is matched).

A dataset is added with one file that defines a loader decorated with
:func:`register_dataset`, plus one import line in ``spectral_probe/data/__init__.py``::

    @register_dataset("cub200", kind="image", usage="cub200:/path/to/CUB_200_2011")
    def load_cub200(root: Path | None, split: str, transform) -> LabeledDataset: ...

Example:
    >>> from spectral_probe.data import parse_data_spec
    >>> parse_data_spec("cub200:/data/CUB_200_2011")
    DataSpec(name='cub200', root=PosixPath('/data/CUB_200_2011'), classes=None)
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import DataError
from ._base import LabeledDataset, Transform

__all__ = [
    "DataSpec",
    "DatasetInfo",
    "register_dataset",
    "list_datasets",
    "get_dataset_info",
    "parse_data_spec",
    "load_dataset",
    "AUTO_SPLIT",
]

#: The split name that lets the data choose: the evaluation split where the dataset has one
#: (``test``, GLUE's ``dev``), every image of a single-folder ``imagefolder`` layout.
AUTO_SPLIT = "auto"
_EVALUATION_SPLITS = ("test", "dev", "val")

RootPolicy = Literal["required", "optional", "none"]
Loader = Callable[[Path | None, str, Transform | None], LabeledDataset]
AutoSplit = Callable[[Path | None], str]


#: Characters a class-list entry may not contain (they delimit the spec).
_CLASS_DELIMITERS = ",:[]"


@dataclass(frozen=True)
class DataSpec:
    """A parsed data spec: a registered ``name``, an optional local ``root``, and optionally
    the ``classes`` to keep (entries as written: class indices or class names)."""

    name: str
    root: Path | None = None
    classes: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.classes is not None:
            object.__setattr__(self, "classes", _check_class_list(self.name, self.classes))

    def __str__(self) -> str:
        head = self.name if self.classes is None else f"{self.name}[{','.join(self.classes)}]"
        return head if self.root is None else f"{head}:{self.root}"


def _check_class_list(name: str, classes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The entries of a class list, stripped; at least two, distinct, none empty."""
    entries = tuple(str(c).strip() for c in classes)
    for entry in entries:
        if not entry or any(ch in entry for ch in _CLASS_DELIMITERS):
            raise DataError(
                f"expected class indices or names without ',', ':', '[' or ']' in the class "
                f"list of {name}, found {entry!r}"
            )
    dupes = [e for i, e in enumerate(entries) if e in entries[:i]]
    if dupes:
        raise DataError(
            f"expected distinct classes in the class list of {name}, found {dupes[0]!r} twice"
        )
    if len(entries) < 2:
        raise DataError(
            f"expected at least 2 classes in the class list of {name}, found {len(entries)}"
        )
    return entries


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about one dataset.

    Attributes:
        name: the spec name.
        kind: ``"image"`` or ``"text"``.
        splits: the split names the loader accepts.
        split_aliases: extra accepted names mapped onto ``splits``.
        root: whether a ``:ROOT`` is ``"required"``, ``"optional"`` or not taken (``"none"``).
        class_subsets: whether a spec may keep a subset of the classes (``NAME[0,2]``).
        usage: an example spec, shown in errors and ``--help``.
        summary: one line describing the dataset and its on-disk layout.
        loader: ``loader(root, split, transform) -> LabeledDataset``.
        auto_split: ``auto_split(root) -> split`` choosing what ``split="auto"`` reads, for
            datasets whose layout decides it (default: the first of ``test``, ``dev``, ``val``
            among ``splits``, else the last split).
    """

    name: str
    kind: Literal["image", "text"]
    splits: tuple[str, ...]
    split_aliases: Mapping[str, str] = field(default_factory=dict)
    root: RootPolicy = "required"
    class_subsets: bool = True
    usage: str = ""
    summary: str = ""
    loader: Loader | None = field(default=None, repr=False, compare=False)
    auto_split: AutoSplit | None = field(default=None, repr=False, compare=False)

    def evaluation_split(self, root: Path | None) -> str:
        """What ``split="auto"`` reads for data at ``root``: the held-out split, or all data."""
        if self.auto_split is not None:
            return self.auto_split(root)
        return next((s for s in _EVALUATION_SPLITS if s in self.splits), self.splits[-1])

    def resolve_split(self, split: str) -> str:
        """The canonical split for ``split`` (aliases resolved), or a :class:`DataError`."""
        key = str(split).strip().lower().replace("_", "-")
        key = self.split_aliases.get(key, key)
        if key not in self.splits:
            accepted = list(self.splits) + sorted(self.split_aliases)
            raise DataError(f"expected a split of {self.name} in {accepted}, found {split!r}")
        return key


_REGISTRY: dict[str, DatasetInfo] = {}


def _normalise_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def register_dataset(
    name: str,
    *,
    kind: Literal["image", "text"],
    splits: tuple[str, ...] = ("train", "test"),
    split_aliases: Mapping[str, str] | None = None,
    root: RootPolicy = "required",
    class_subsets: bool = True,
    usage: str = "",
    summary: str = "",
    auto_split: AutoSplit | None = None,
) -> Callable[[Loader], Loader]:
    """Register ``loader(root, split, transform)`` under ``name`` (decorator).

    ``auto_split(root)`` overrides what ``split="auto"`` reads (see :class:`DatasetInfo`);
    ``class_subsets=False`` refuses a class list (``NAME[0,2]``) for this dataset.

    Raises:
        ValueError: if ``name`` is already registered (a programming error).
    """
    key = _normalise_name(name)

    def decorator(loader: Loader) -> Loader:
        if key in _REGISTRY:
            raise ValueError(f"dataset {key!r} is registered twice")
        _REGISTRY[key] = DatasetInfo(
            name=key,
            kind=kind,
            splits=tuple(splits),
            split_aliases=dict(split_aliases or {}),
            root=root,
            class_subsets=class_subsets,
            usage=usage or (key if root == "none" else f"{key}:/path/to/{key}"),
            summary=summary,
            loader=loader,
            auto_split=auto_split,
        )
        return loader

    return decorator


def list_datasets(pattern: str | None = None, *, kind: str | None = None) -> list[str]:
    """Registered dataset names, sorted; optionally filtered by a glob and by ``kind``.

    Example:
        >>> from spectral_probe.data import list_datasets
        >>> list_datasets("glue-*")
        ['glue-mnli', 'glue-mrpc', 'glue-qnli', 'glue-sst2']
    """
    names = sorted(_REGISTRY)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern.lower())]
    if kind:
        names = [n for n in names if _REGISTRY[n].kind == kind]
    return names


def get_dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a registered dataset, or a :class:`DataError`."""
    key = _normalise_name(name)
    try:
        return _REGISTRY[key]
    except KeyError:
        raise DataError(f"expected a dataset name in {list_datasets()}, found {name!r}") from None


def parse_data_spec(spec: str | DataSpec) -> DataSpec:
    """Parse ``NAME[:ROOT]`` or ``NAME[CLASSES][:ROOT]``; checks the name, the class list and
    whether a root is required or allowed.

    The root is split off at the first ``:`` and ``~`` is expanded; whether it exists is
    checked when the dataset is loaded. ``CLASSES`` is a comma-separated list of class indices
    or names (at least two, distinct); they are matched against the dataset's classes when it
    is loaded. ``str()`` of the result gives the spec back (entries stripped of spaces).

    Example:
        >>> from spectral_probe.data import parse_data_spec
        >>> str(parse_data_spec("fashion-mnist[0, 2,4,6]"))
        'fashion-mnist[0,2,4,6]'
    """
    if isinstance(spec, DataSpec):
        return spec
    if not isinstance(spec, str) or not spec.strip():
        raise DataError(f"expected a data spec NAME[:ROOT], found {spec!r}")
    head, _, root_text = spec.strip().partition(":")
    name, bracket, class_text = head.partition("[")
    inner = class_text[:-1] if class_text.endswith("]") else None
    if "]" in name or (bracket and (inner is None or "[" in inner or "]" in inner)):
        raise DataError(
            f"expected a data spec NAME[CLASSES][:ROOT] with one class list right after the "
            f"name (e.g. 'fashion-mnist[0,2,4,6]'), found {spec!r}"
        )
    info = get_dataset_info(name)
    classes: tuple[str, ...] | None = None
    if bracket:
        if not info.class_subsets:
            raise DataError(
                f"expected no class list for {info.name} (it is scored on all its classes), "
                f"found {spec!r}"
            )
        classes = tuple((inner or "").split(","))
    root_text = root_text.strip()
    if info.root == "none" and root_text:
        raise DataError(
            f"expected no root for {info.name} (spec {info.usage!r}), found {root_text!r}"
        )
    if info.root == "required" and not root_text:
        raise DataError(
            f"expected a root directory for {info.name} (e.g. {info.usage!r}), found {spec!r}"
        )
    root = Path(root_text).expanduser() if root_text else None
    return DataSpec(info.name, root, classes)


def load_dataset(
    spec: str | DataSpec, split: str = "train", transform: Transform | None = None
) -> LabeledDataset:
    """Load ``split`` of the dataset named by ``spec``.

    Args:
        spec: ``NAME[:ROOT]``, see :func:`list_datasets` for the names; with a class list,
            ``NAME[CLASSES][:ROOT]``, only those classes are read (every split the same way),
            relabelled ``0..k-1`` in the order listed, ``classes`` holding their names. An
            entry that is a class name (exactly, else ignoring case when that is unique)
            selects that class; an entry of digits that is no class name is a class index
            (so a folder named ``2`` is selected by ``2`` whatever its index).
        split: ``"train"`` or ``"test"`` (GLUE: ``"train"`` or ``"dev"``; ``"test"`` is an
            alias of the evaluation split, because GLUE's own test files have no labels).
            ``"auto"`` (:data:`AUTO_SPLIT`) reads the evaluation split where the dataset has
            one and all images of a single-folder ``imagefolder``; the dataset's ``split``
            attribute names what was read.
        transform: applied to each sample (to each batch for in-memory image datasets).

    Returns:
        A :class:`~spectral_probe.data.LabeledDataset` with ``targets``, ``classes``,
        ``kind`` and ``(sample, label)`` items. Image files are not opened until indexed.

    Raises:
        DataError: unknown name, missing/extra root, unknown split, a bad class list
            (unknown class, index out of range, a class twice, fewer than two), or a layout
            problem (missing list file, empty class, label outside the label set).
    """
    parsed = parse_data_spec(spec)
    info = get_dataset_info(parsed.name)
    auto = str(split).strip().lower() == AUTO_SPLIT
    canonical = "" if auto else info.resolve_split(split)
    if parsed.root is not None and not parsed.root.exists():
        raise DataError(f"expected the {info.name} root directory at {parsed.root}, found nothing")
    if parsed.root is not None and not parsed.root.is_dir():
        raise DataError(
            f"expected the {info.name} root to be a directory, found a file: {parsed.root}"
        )
    if info.loader is None:  # only a hand-built DatasetInfo lacks one
        raise DataError(f"expected a loader registered for {info.name}, found none")
    if auto:
        canonical = info.evaluation_split(parsed.root)
    dataset = info.loader(parsed.root, canonical, transform)
    if parsed.classes is None:
        return dataset
    if not info.class_subsets:  # a DataSpec built by hand
        raise DataError(f"expected no class list for {info.name}, found {list(parsed.classes)}")
    return dataset.select_classes(_class_indices(parsed, dataset.classes))


def _class_indices(spec: DataSpec, classes: list[str]) -> list[int]:
    """The class index of each entry of ``spec.classes`` (see :func:`load_dataset`)."""
    picked: list[int] = []
    for entry in spec.classes or ():
        exact = [i for i, c in enumerate(classes) if c == entry]
        folded = [i for i, c in enumerate(classes) if c.lower() == entry.lower()]
        named = exact or (folded if len(folded) == 1 else [])
        index = int(entry) if entry.isascii() and entry.isdigit() else None
        if named:
            picked.append(named[0])
        elif index is not None:
            if index >= len(classes):
                raise DataError(
                    f"expected class indices in 0..{len(classes) - 1} for {spec.name}, "
                    f"found {index} in {spec}"
                )
            picked.append(index)
        else:
            shown = ", ".join(repr(c) for c in classes[:12])
            more = f", ... ({len(classes)} in all)" if len(classes) > 12 else ""
            raise DataError(
                f"expected a class index or one of the class names of {spec.name} "
                f"({shown}{more}), found {entry!r}"
            )
    for i, c in enumerate(picked):
        if picked.index(c) != i:
            raise DataError(
                f"expected distinct classes in {spec}, found {classes[c]!r} (class {c}) twice"
            )
    return picked
