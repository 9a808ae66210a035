"""The dataset classes every loader returns, and the checks they share.

Three storage shapes cover every dataset the toolkit reads:

* :class:`ImageFileDataset`: a list of image paths, decoded lazily (one file per
  ``__getitem__``), samples are RGB PIL images.
* :class:`TensorImageDataset`: images held in memory as one ``uint8`` tensor of shape
  ``(N, C, H, W)`` (Fashion-MNIST, digits); samples are ``uint8`` tensors of shape
  ``(C, H, W)``, and a list of indices fetches a whole batch in one indexing operation.
* :class:`TextDataset`: rows of a table; samples are tuples of strings.

All three expose ``targets`` (``list[int]``), ``classes`` (``list[str]``), ``kind``
(``"image"`` or ``"text"``), ``name``, ``split`` and ``transform``, and return
``(sample, label)`` pairs.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError

__all__ = [
    "LabeledDataset",
    "ImageFileDataset",
    "TensorImageDataset",
    "TextDataset",
    "LabeledSubset",
    "require_dir",
    "require_file",
    "find_first",
    "check_labels",
    "check_nonempty_classes",
]

Kind = Literal["image", "text"]
Transform = Callable[[Any], Any]


class LabeledDataset(Dataset):
    """Common surface of every dataset: ``targets``, ``classes``, ``kind``, ``transform``.

    Subclasses implement :meth:`load` (the raw sample at one index); ``__getitem__``
    applies ``transform`` to it and pairs it with its label.
    """

    kind: Kind = "image"

    def __init__(
        self,
        targets: Sequence[int],
        classes: Sequence[str],
        *,
        name: str,
        split: str,
        transform: Transform | None = None,
    ) -> None:
        self.targets: list[int] = [int(t) for t in targets]
        self.classes: list[str] = list(classes)
        self.name = name
        self.split = split
        self.transform = transform

    def load(self, index: int) -> Any:
        """The untransformed sample at ``index``."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        sample = self.load(index)
        if self.transform is not None:
            sample = self.transform(sample)
        return sample, self.targets[index]

    @property
    def supports_batch_index(self) -> bool:
        """Whether ``dataset[list_of_indices]`` returns a whole batch at once."""
        return False

    def with_transform(self, transform: Transform | None) -> LabeledDataset:
        """A shallow copy sharing the file list/tensor, with another ``transform``."""
        clone = copy.copy(self)
        clone.transform = transform
        return clone

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabeledSubset:
        """The samples at ``indices`` (e.g. from :func:`~spectral_probe.data.sample_per_class`)."""
        return LabeledSubset(self, indices)

    def select_classes(self, classes: Sequence[int]) -> LabeledSubset:
        """The samples of ``classes`` (class indices), relabelled ``0..k-1`` in that order.

        ``classes`` of the result are the names of the classes kept, in the same order.
        """
        order = [int(c) for c in classes]
        n = len(self.classes)
        bad = [c for c in order if not 0 <= c < n]
        if bad:
            raise DataError(f"expected class indices in 0..{n - 1} of {self.name}, found {bad[0]}")
        if len(set(order)) != len(order):
            raise DataError(f"expected distinct class indices for {self.name}, found {order}")
        relabel = np.full(n, -1, dtype=np.int64)
        relabel[order] = np.arange(len(order))
        keep = np.flatnonzero(relabel[np.asarray(self.targets, dtype=np.int64)] >= 0)
        return LabeledSubset(self, keep, classes=[self.classes[c] for c in order], relabel=relabel)

    def class_counts(self) -> np.ndarray:
        """Number of samples per class, an ``ndarray`` of shape ``(len(classes),)``."""
        return np.bincount(np.asarray(self.targets, dtype=np.int64), minlength=len(self.classes))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, "
            f"n={len(self)}, classes={len(self.classes)}, kind={self.kind!r})"
        )


class ImageFileDataset(LabeledDataset):
    """Images listed by path; each is opened and decoded only when it is indexed.

    Args:
        paths: one path per sample.
        targets: one class index per sample, into ``classes``.
        classes: class names.
        name: dataset name (registry name).
        split: split name.
        transform: applied to the RGB PIL image.
    """

    kind: Kind = "image"

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        targets: Sequence[int],
        classes: Sequence[str],
        *,
        name: str,
        split: str,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(targets, classes, name=name, split=split, transform=transform)
        if len(paths) != len(self.targets):
            raise DataError(
                f"expected one label per image in {name}/{split}, "
                f"found {len(paths)} images and {len(self.targets)} labels"
            )
        self.paths: list[str] = [os.fspath(p) for p in paths]

    def load(self, index: int) -> Any:
        from PIL import Image, UnidentifiedImageError

        path = self.paths[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except FileNotFoundError:
            raise DataError(f"expected an image file at {path}, found nothing") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"expected a readable image at {path}, found: {exc}") from None


class TensorImageDataset(LabeledDataset):
    """Images held in memory as one ``uint8`` tensor of shape ``(N, C, H, W)``.

    ``dataset[i]`` gives a ``uint8`` tensor ``(C, H, W)``; ``dataset[list_of_indices]``
    gives a batch ``(images, labels)`` in one indexing operation, with ``transform``
    applied once to the whole ``(B, C, H, W)`` batch. :func:`~spectral_probe.data.make_loader`
    takes that path (no PIL, no per-sample collation) when the transform declares
    ``batched = True``, as :class:`~spectral_probe.data.TensorImageTransform` does.
    """

    kind: Kind = "image"

    def __init__(
        self,
        images: torch.Tensor,
        targets: Sequence[int],
        classes: Sequence[str],
        *,
        name: str,
        split: str,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(targets, classes, name=name, split=split, transform=transform)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise DataError(
                f"expected a uint8 image tensor of shape (N, C, H, W), "
                f"found {images.dtype} of shape {tuple(images.shape)}"
            )
        if images.shape[0] != len(self.targets):
            raise DataError(
                f"expected one label per image in {name}/{split}, "
                f"found {images.shape[0]} images and {len(self.targets)} labels"
            )
        self.images = images
        self._targets_tensor = torch.as_tensor(self.targets, dtype=torch.int64)

    def load(self, index: int) -> torch.Tensor:
        return self.images[index]

    @property
    def supports_batch_index(self) -> bool:
        """True when ``transform`` is None or takes whole batches (``transform.batched``).

        A per-image transform (e.g. the paper's PIL-style pipeline, whose random crop
        would be shared by the whole batch) makes loaders fall back to one sample at a time.
        """
        return self.transform is None or bool(getattr(self.transform, "batched", False))

    def get_batch(
        self, indices: Sequence[int] | np.ndarray | torch.Tensor
    ) -> tuple[Any, torch.Tensor]:
        """``(transform(images[indices]), labels[indices])`` for a batch of indices."""
        idx = torch.as_tensor(indices, dtype=torch.int64)
        batch = self.images.index_select(0, idx)
        if self.transform is not None:
            batch = self.transform(batch)
        return batch, self._targets_tensor.index_select(0, idx)

    def __getitem__(self, index: Any) -> Any:  # type: ignore[override]
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            return self.get_batch(index)
        return super().__getitem__(index)


class TextDataset(LabeledDataset):
    """Rows of text; each sample is a tuple of strings (one or two segments)."""

    kind: Kind = "text"

    def __init__(
        self,
        texts: Sequence[tuple[str, ...]],
        targets: Sequence[int],
        classes: Sequence[str],
        *,
        name: str,
        split: str,
        transform: Transform | None = None,
    ) -> None:
        super().__init__(targets, classes, name=name, split=split, transform=transform)
        self.texts: list[tuple[str, ...]] = list(texts)

    def load(self, index: int) -> tuple[str, ...]:
        return self.texts[index]


class LabeledSubset(LabeledDataset):
    """The samples of ``base`` at ``indices``, keeping ``classes``, ``kind`` and labels.

    With ``relabel`` (an array mapping each label of ``base`` to a new one, ``-1`` for classes
    left out) and the matching ``classes``, labels are mapped as they are read: this is what
    :meth:`LabeledDataset.select_classes` builds.
    """

    def __init__(
        self,
        base: LabeledDataset,
        indices: Sequence[int] | np.ndarray,
        *,
        classes: Sequence[str] | None = None,
        relabel: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(base)):
            raise DataError(
                f"expected subset indices in [0, {len(base)}) for {base.name}/{base.split}, "
                f"found {int(idx.min())}..{int(idx.max())}"
            )
        # No super().__init__: ``transform`` is the base's, not a copy of it.
        self.base = base
        self.indices = idx
        targets = np.asarray(base.targets, dtype=np.int64)[idx]
        self.relabel = None if relabel is None else np.asarray(relabel, dtype=np.int64)
        if self.relabel is not None:
            targets = self.relabel[targets]
        self.targets = targets.tolist()
        self.classes = base.classes if classes is None else list(classes)
        self.name = base.name
        self.split = base.split
        self.kind = base.kind

    @property
    def transform(self) -> Transform | None:  # type: ignore[override]
        """The base dataset's transform; setting it swaps in a re-transformed base."""
        return self.base.transform

    @transform.setter
    def transform(self, value: Transform | None) -> None:
        self.base = self.base.with_transform(value)

    def load(self, index: int) -> Any:
        return self.base.load(int(self.indices[index]))

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (list, tuple, np.ndarray, torch.Tensor)):
            base: Any = self.base  # a batch-indexable dataset (supports_batch_index)
            batch = base[self.indices[np.asarray(index, dtype=np.int64)]]
            if self.relabel is None:
                return batch
            inputs, labels = batch
            return inputs, torch.as_tensor(self.relabel)[labels]
        sample, label = self.base[int(self.indices[index])]
        return sample, label if self.relabel is None else int(self.relabel[label])

    @property
    def supports_batch_index(self) -> bool:
        return self.base.supports_batch_index

    def with_transform(self, transform: Transform | None) -> LabeledSubset:
        clone = copy.copy(self)
        clone.base = self.base.with_transform(transform)
        return clone

    def subset(self, indices: Sequence[int] | np.ndarray) -> LabeledSubset:
        return LabeledSubset(
            self.base,
            self.indices[np.asarray(indices, dtype=np.int64)],
            classes=None if self.relabel is None else self.classes,
            relabel=self.relabel,
        )


# ---------------------------------------------------------------------------------------
# Checks shared by the loaders. Each raises DataError with one line: expected vs found.


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a directory, else a :class:`DataError` naming ``what``."""
    if not path.is_dir():
        found = "a file" if path.exists() else "nothing"
        raise DataError(f"expected {what} directory at {path}, found {found}")
    return path


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a :class:`DataError` naming the file expected."""
    if not path.is_file():
        found = "a directory" if path.exists() else "nothing"
        raise DataError(f"expected {what} file {path.name} at {path}, found {found}")
    return path


def find_first(candidates: Sequence[Path], what: str) -> Path:
    """The first existing path of ``candidates``; the error names every place looked."""
    for path in candidates:
        if path.exists():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise DataError(f"expected {what} at one of: {looked}; found none")


def check_labels(
    labels: Sequence[int] | np.ndarray, n_classes: int, where: str, *, offset: int = 0
) -> None:
    """Every label must lie in ``[offset, offset + n_classes)``; ``where`` names the file."""
    arr = np.asarray(labels, dtype=np.int64)
    bad = np.flatnonzero((arr < offset) | (arr >= offset + n_classes))
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"expected labels in {offset}..{offset + n_classes - 1} in {where}, "
            f"found {int(arr[i])} (entry {i + 1})"
        )


def check_nonempty_classes(targets: Sequence[int], classes: Sequence[str], where: str) -> None:
    """Every class must have at least one sample; the error names the first empty class."""
    counts = np.bincount(np.asarray(targets, dtype=np.int64), minlength=len(classes))
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        names = ", ".join(repr(classes[i]) for i in empty[:5])
        more = f" and {empty.size - 5} more" if empty.size > 5 else ""
        raise DataError(
            f"expected every class to have samples in {where}, found none for {names}{more}"
        )
