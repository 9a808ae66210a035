"""Capture the head's input ``F`` with a forward pre-hook (and transform it for TSVD)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from ._base import resolve_head, unwrap_model

__all__ = ["FeatureCapture"]


class FeatureCapture:
    """Forward pre-hook on the head: remembers its input ``F`` and may replace it.

    The hook stores ``F`` (the feature extractor's output, shape ``(b, d)``) as
    :attr:`features` and feeds ``transform(F)`` to the head instead (TSVD). Use it as a
    context manager or call :meth:`remove`.

    Example:
        >>> import torch
        >>> model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
        >>> with FeatureCapture(model, "1") as cap:
        ...     _ = model(torch.randn(5, 4))
        >>> cap.features.shape
        torch.Size([5, 3])
    """

    def __init__(
        self, model: nn.Module, head: str, transform: Callable[[Tensor], Tensor] | None = None
    ) -> None:
        self.features: Tensor | None = None
        self._transform = transform
        module = resolve_head(unwrap_model(model), head)
        self._handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if not args or not isinstance(args[0], Tensor):
            return None
        self.features = args[0]
        if self._transform is None:
            return None
        return (self._transform(args[0]), *args[1:])

    def remove(self) -> None:
        """Remove the hook (idempotent); the last features stay readable."""
        self._handle.remove()

    def __enter__(self) -> FeatureCapture:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()
