"""A figure process forked before a command's heavy imports, to draw its figures later.

A command that writes figures spends its first second importing torch and loading models on
one core. A :class:`FigureWorker` started before that forks a small process which imports
matplotlib and pandas and draws a throwaway figure (fonts, mathtext, the PNG writer) on the
other core meanwhile, then waits. Once the result is computed, :meth:`FigureWorker.submit`
sends it down a pipe and the figures are drawn there (shared with one forked sibling, see
:func:`~spectral_probe.plotting.save_figures`) while the command writes its tables.

The result travels as its dataclass fields (:func:`result_fields`: DataFrames, arrays, dicts):
unpickling the result's class would import its module, and with it torch, into the figure
process. Plot functions read results through attributes only, so the fields serve as well.
Without ``os.fork`` (Windows), or when disabled, :meth:`~FigureWorker.submit` draws in this
process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib
import os
import pickle
import signal
import struct
from collections.abc import Callable, Sequence
from types import SimpleNamespace, TracebackType
from typing import Any

from ._base import FigureJob, save_figures

__all__ = ["FigureWorker", "result_fields"]

#: ``build(*args)`` returns the figure jobs; it runs in the figure process.
Build = Callable[..., Sequence[FigureJob]]


def result_fields(result: Any) -> SimpleNamespace:
    """A dataclass result as a namespace of its fields (torch-free to unpickle)."""
    return SimpleNamespace(**{f.name: getattr(result, f.name) for f in dataclasses.fields(result)})


class FigureWorker:
    """A process that readies matplotlib now and draws a result's figures later.

    Use as a context manager around everything from the heavy imports to the written output;
    leaving it ends the process (killed if it was never sent anything, or on an error).

    Args:
        enabled: fork the process (``False``: :meth:`submit` draws in this process).
        preload: more modules the figure process imports while it waits (those the plot
            functions import lazily).
    """

    def __init__(self, *, enabled: bool = True, preload: Sequence[str] = ()) -> None:
        self._pid: int | None = None
        self._jobs: int | None = None  # write end: the pickled (build, args)
        self._done: int | None = None  # read end: empty, or the pickled error
        self._started = enabled and hasattr(os, "fork")
        if self._started:
            self._start(tuple(preload))

    @property
    def forked(self) -> bool:
        """Whether a figure process is running."""
        return self._pid is not None

    def _start(self, preload: tuple[str, ...]) -> None:
        jobs_read, jobs_write = os.pipe()
        done_read, done_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the figure process; its effects are tested
            os.close(jobs_write)
            os.close(done_read)
            _serve(jobs_read, done_write, preload)
        os.close(jobs_read)
        os.close(done_write)
        self._pid, self._jobs, self._done = pid, jobs_write, done_read

    def submit(self, build: Build, *args: Any) -> None:
        """Draw the figures ``build(*args)`` lists: in the figure process, or here and now.

        ``build`` must be a module-level function (it is pickled by name) and ``args``
        picklable; pass results through :func:`result_fields`.
        """
        if not self._started:
            save_figures(build(*args))
            return
        if self._jobs is None:
            raise RuntimeError("expected one submit per FigureWorker, found a second")
        payload = pickle.dumps((build, args), protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _send(self._jobs, payload)
        except BrokenPipeError:  # the process failed before reading: raise its error
            self.wait()
            raise
        finally:
            os.close(self._jobs)
            self._jobs = None

    def wait(self) -> None:
        """Block until the submitted figures are drawn; raise the figure process's error here."""
        if self._pid is None or self._done is None:
            return
        report = _receive(self._done)
        os.close(self._done)
        self._done = None
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if report:
            raise pickle.loads(report)
        if report is None or status != 0:
            raise RuntimeError(f"the figure process ended with status {status}, drawing nothing")

    def close(self) -> None:
        """End the figure process if it is still running (no waiting for figures)."""
        for fd in (self._jobs, self._done):
            if fd is not None:
                os.close(fd)
        self._jobs = self._done = None
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):  # already gone
                os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None

    def __enter__(self) -> FigureWorker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _warm_up(preload: tuple[str, ...]) -> None:
    """Import the drawing stack and draw one small figure: fonts, mathtext, Agg, PNG."""
    import io

    import pandas  # noqa: F401  (the result's tables unpickle into DataFrames)
    from matplotlib.figure import Figure

    for name in preload:
        importlib.import_module(name)
    fig = Figure(figsize=(2.0, 2.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot([1.0, 2.0], [1.0, 10.0])
    ax.set_yscale("log")
    ax.set_title(r"$|\cos\theta_i|$", fontsize=8)
    fig.colorbar(ax.imshow([[0.0, 1.0]]), ax=ax)
    fig.savefig(io.BytesIO(), format="png", dpi=50)


def _serve(jobs: int, done: int, preload: tuple[str, ...]) -> None:  # pragma: no cover
    """The figure process: warm up, read one ``(build, args)``, draw, report, exit."""
    code = 0
    try:
        gc.disable()  # the imports live until exit: no collections while they are made,
        _warm_up(preload)
        gc.freeze()  # and none that rescan them later
        gc.enable()
        payload = _receive(jobs)
        if payload:  # None: the command ended without figures
            build, args = pickle.loads(payload)
            save_figures(build(*args))
        _send(done, b"")
    except BaseException as exc:  # reported to the parent, which raises it
        code = 1
        try:
            report = pickle.dumps(exc)
        except Exception:  # an unpicklable error becomes its message
            report = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
        with contextlib.suppress(OSError):  # the parent has gone
            _send(done, report)
    finally:
        os._exit(code)


# Messages are length-prefixed rather than ended by EOF: a process the parent forks later
# (a data loader, another figure process) inherits the pipe's write end and would hold EOF off.
_HEADER = struct.Struct("<Q")


def _send(fd: int, data: bytes) -> None:
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> bytes | None:
    """One message, or ``None`` when the other end closed first."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    return _read_exactly(fd, _HEADER.unpack(header)[0])
