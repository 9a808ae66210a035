"""Shared plotting plumbing: figures without pyplot's global state, atomic saving."""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "new_axes",
    "panel_axes",
    "new_figure",
    "palette",
    "save_figure",
    "save_figures",
    "FigureJob",
]

#: ``(make, path, cost)``: ``make()`` builds the figure saved to ``path``; ``cost`` is a
#: relative estimate of its drawing time, used to share the jobs out between processes.
FigureJob = tuple[Callable[[], "Figure"], Path, float]


def new_axes(ax: Axes | None, figsize: tuple[float, float] = (6.4, 4.2)) -> tuple[Figure, Axes]:
    """Return ``(figure, ax)``: the given axes' figure, or a fresh figure."""
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = new_figure(figsize)
    return fig, fig.add_subplot()


def panel_axes(
    ax: Axes | Sequence[Axes] | None,
    n: int,
    *,
    ncols: int,
    panel: tuple[float, float],
) -> tuple[Figure, list[Axes], bool]:
    """``(figure, axes, own)`` for a figure of ``n`` panels.

    With ``ax`` (one Axes per panel, e.g. ``fig.subplots(2, 2).flat``) the panels are drawn
    there and ``own`` is False (leave the figure's titles alone); else a fresh grid of
    ``ncols`` columns of ``panel``-sized cells, the cells past ``n`` hidden.

    Raises:
        ConfigError: ``ax`` holds a number of axes other than ``n``.
    """
    if ax is not None:
        import numpy as np

        axes = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(axes) != n:
            from ..errors import ConfigError

            raise ConfigError(f"expected {n} axes (one per panel), found {len(axes)}")
        return axes[0].figure, axes, False
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = new_figure((panel[0] * ncols, panel[1] * nrows))
    grid = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for extra in grid[n:]:
        extra.set_visible(False)
    return fig, grid[:n], True


def new_figure(figsize: tuple[float, float]) -> Figure:
    """A standalone figure (no pyplot, so library code never touches global state)."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def palette(n: int) -> list[tuple[float, ...]]:
    """``n`` distinct colours: tab10 up to 10, else evenly spaced on viridis."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "viridis"]
    return [cmap(i if n <= 10 else i / max(n - 1, 1)) for i in range(n)]


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 150) -> Path:
    """Save ``fig`` to ``path`` (format from the suffix) through an atomic rename.

    A figure with a layout engine (every :func:`new_figure`: constrained layout) already fits
    its labels, titles and colour bars, so it is saved as laid out; ``bbox_inches="tight"``
    would draw it a second time only to measure it (a third of the cost of the compare-weights
    figures). Figures without one are cropped to their contents.
    """
    path = Path(path)
    buf = io.BytesIO()
    tight = "tight" if fig.get_layout_engine() is None else None
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=dpi, bbox_inches=tight)
    return atomic_write_bytes(path, buf.getvalue())


def _share(jobs: Sequence[FigureJob], n: int) -> list[list[FigureJob]]:
    """Longest-first greedy assignment of the jobs to ``n`` bins of about equal total cost."""
    bins: list[list[FigureJob]] = [[] for _ in range(n)]
    totals = [0.0] * n
    for job in sorted(jobs, key=lambda j: -j[2]):
        i = totals.index(min(totals))
        bins[i].append(job)
        totals[i] += job[2]
    return [b for b in bins if b]


def _draw(jobs: Sequence[FigureJob]) -> None:
    for make, path, _ in jobs:
        save_figure(make(), path)


def save_figures(jobs: Sequence[FigureJob], *, processes: int | None = None) -> list[Path]:
    """Draw and save several figures, in parallel processes where the machine allows.

    Drawing is pure Python and holds the GIL, so threads would not help; on POSIX the jobs
    are shared out (by ``cost``) between this process and ``processes - 1`` forked ones
    (default: one per CPU, at most one per job), which inherit the results to draw without
    copying them. An error in any job is raised here, after every process has finished.
    Elsewhere, or for a single job, figures are drawn one after the other.

    Returns:
        The paths written, in the order of ``jobs``.
    """
    n = min(processes or os.cpu_count() or 1, len(jobs))
    if n < 2 or not hasattr(os, "fork"):
        _draw(jobs)
        return [path for _, path, _ in jobs]
    mine, *others = _share(jobs, n)
    children: list[tuple[int, int]] = []
    for share in others:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child draws its share and leaves without running any cleanup
            os.close(read_end)
            code = 0
            try:
                _draw(share)
            except BaseException as exc:  # reported to the parent
                try:
                    payload = pickle.dumps(exc)
                except Exception:  # an unpicklable error becomes its message
                    payload = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
                with os.fdopen(write_end, "wb") as fh:
                    fh.write(payload)
                code = 1
            finally:
                os._exit(code)
        os.close(write_end)
        children.append((pid, read_end))
    error: BaseException | None = None
    try:
        _draw(mine)
    except BaseException as exc:  # raised once the children are reaped
        error = exc
    for pid, read_end in children:
        with os.fdopen(read_end, "rb") as fh:
            payload = fh.read()
        _, status = os.waitpid(pid, 0)
        if error is None and payload:
            error = pickle.loads(payload)
        elif error is None and status != 0:
            error = RuntimeError(f"a figure process ended with status {status}")
    if error is not None:
        raise error
    return [path for _, path, _ in jobs]
