"""Shared plotting plumbing: figures without pyplot's global state, atomic saving."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from .._io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["new_axes", "new_figure", "save_figure"]


def new_axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.2)) -> tuple[Figure, Axes]:
    """Return ``(figure, ax)``: the given axes' figure, or a fresh figure."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A standalone figure (no pyplot, so library code never touches global state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix) through an atomic rename."""
    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches="tight")
    return atomic_write_bytes(path, buf.getvalue())
