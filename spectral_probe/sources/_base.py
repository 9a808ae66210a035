"""The shared part of every reader: canonical names over stored names, depth order, notes."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

import torch

from ..errors import CheckpointError
from ._names import canonical_name, depth_key

__all__ = ["BaseSource"]


class BaseSource:
    """A :class:`~spectral_probe.sources.TensorSource` over stored names.

    Subclasses call :meth:`_index` once with the stored names and implement
    :meth:`_load_stored`, :meth:`_shape_stored` and :meth:`_dtype_stored`.

    Attributes:
        label: what the user named (a path, ``hf:ID``).
        notes: one-line remarks about what was read (tied embeddings, stripped wrappers...).
    """

    label: str

    def __init__(self, label: str) -> None:
        self.label = label
        self.notes: list[str] = []
        #: ``config.json`` of a model directory (``model_type``, ``tie_word_embeddings``...)
        self.config: dict[str, Any] = {}
        #: every name as stored in the file(s)
        self.stored_names: set[str] = set()
        self._stored: dict[str, str] = {}
        self._order: list[str] = []

    def _index(self, stored: Iterable[str], *, keep_order: bool = False) -> None:
        """Map canonical names to stored ones; order them by depth unless ``keep_order``."""
        mapping: dict[str, str] = {}
        for name in stored:
            canon = canonical_name(name)
            if canon in mapping:
                raise CheckpointError(
                    f"expected distinct tensor names in {self.label} once wrappers are stripped, "
                    f"found {mapping[canon]!r} and {name!r} both as {canon!r}"
                )
            mapping[canon] = name
        self._stored = mapping
        self._order = list(mapping) if keep_order else sorted(mapping, key=depth_key)

    def names(self) -> list[str]:
        """Canonical tensor names, in depth order."""
        return list(self._order)

    def stored_name(self, name: str) -> str:
        """The name under which ``name`` is stored in the file."""
        return self._stored[self._check(name)]

    def _check(self, name: str) -> str:
        if name not in self._stored:
            raise KeyError(f"no tensor named {name!r} in {self.label}")
        return name

    def shape(self, name: str) -> tuple[int, ...]:
        """Shape of one tensor, read from the header (nothing is loaded)."""
        return self._shape_stored(self.stored_name(name))

    def dtype(self, name: str) -> torch.dtype:
        """dtype of one tensor as stored."""
        return self._dtype_stored(self.stored_name(name))

    def load(self, name: str) -> torch.Tensor:
        """One tensor, as stored (memory-mapped where the format allows)."""
        return self._load_stored(self.stored_name(name))

    def close(self) -> None:
        """Release file handles (a no-op for readers that hold none)."""

    def __enter__(self) -> BaseSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label!r}, {len(self._order)} tensors)"

    # --- implemented by readers
    def _load_stored(self, stored: str) -> torch.Tensor:
        raise NotImplementedError

    def _shape_stored(self, stored: str) -> tuple[int, ...]:
        return tuple(self._load_stored(stored).shape)

    def _dtype_stored(self, stored: str) -> torch.dtype:
        return self._load_stored(stored).dtype
