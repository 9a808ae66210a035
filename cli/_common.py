"""Shared CLI plumbing: one-line errors, progress bars, tables, output folders."""

from __future__ import annotations

import csv
import functools
import gc
import io
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from spectral_probe._jobs import EXECUTORS
from spectral_probe.errors import SpectralProbeError

__all__ = [
    "Executor",
    "QuietOpt",
    "console",
    "stdout",
    "fail",
    "handles_errors",
    "progress_bar",
    "print_frame",
    "print_records",
    "records_csv",
    "print_json",
    "parse_kinds",
    "invocation",
    "save_and_show",
    "own_process",
    "long_lived",
    "SplitOpt",
    "OutOpt",
    "JsonOpt",
    "PoolChoice",
    "BatchSizeOpt",
    "MaxBatchesOpt",
    "ImageSizeOpt",
    "InterpolationOpt",
    "PoolOpt",
    "DeviceOpt",
    "AmpOpt",
    "ChannelsLastOpt",
    "WorkersOpt",
    "MaxLengthOpt",
    "feature_reader",
]

#: The job executors (local processes, a SLURM array, inline), from :mod:`spectral_probe._jobs`.
Executor = Enum("Executor", {name: name for name in EXECUTORS}, type=str)  # type: ignore[misc]

QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]

#: ``--split`` of the analysis commands; default ``auto`` (spectral_probe.data.AUTO_SPLIT,
#: spelt out here so that --help does not import the data layer).
SplitOpt = Annotated[
    str,
    typer.Option(
        "--split",
        help="Split of the data: auto = the test split where the data has one (GLUE: dev), "
        "else every image of a single-folder ImageFolder (ROOT/<class>/*.jpg); or train, test, all.",
    ),
]

#: ``--out`` of the analysis commands: an atomic folder written by :func:`save_and_show`.
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Write CSVs, results.json, config.json and figures here."),
]
#: ``--json`` of the analysis commands.
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the full results as JSON on stdout.")]

# The feature-reading options: one group, shared by feature-spectrum, compare-features and
# rank-models, that :func:`feature_reader` turns into one FeatureReader (which checks them).


class PoolChoice(str, Enum):
    auto = "auto"
    avg = "avg"
    flatten = "flatten"
    cls = "cls"


BatchSizeOpt = Annotated[
    int,
    typer.Option(help="Samples per batch (feature-spectrum: the rows b of each feature matrix)."),
]
MaxBatchesOpt = Annotated[
    int | None,
    typer.Option(
        help="Read at most this many batches per model [default: the whole split].",
        show_default=False,
    ),
]
ImageSizeOpt = Annotated[
    int | None,
    typer.Option(
        help="Input side in pixels for every model [default: each model's own].", show_default=False
    ),
]
InterpolationOpt = Annotated[
    str | None,
    typer.Option(
        help="Resizing filter for every model: bilinear, bicubic or nearest [default: each "
        "model's own, e.g. bicubic for EfficientNet-Lite].",
        show_default=False,
    ),
]
PoolOpt = Annotated[
    PoolChoice,
    typer.Option(
        help="Maps: auto/avg = spatial mean, flatten = C*H*W; sequences: auto/cls = [CLS], avg = token mean."
    ),
]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
AmpOpt = Annotated[
    bool | None,
    typer.Option(
        "--amp/--no-amp",
        help="Autocast (float16) the forward [default: on CUDA only].",
        show_default=False,
    ),
]
ChannelsLastOpt = Annotated[
    bool | None,
    typer.Option(
        "--channels-last/--no-channels-last",
        help="Images and weights in channels_last [default: on CUDA only].",
        show_default=False,
    ),
]
WorkersOpt = Annotated[int, typer.Option(help="Loader processes for image files.")]
MaxLengthOpt = Annotated[int, typer.Option(help="Text: truncate token sequences to this length.")]


def feature_reader(data: str, **options: Any) -> Any:
    """The :class:`~spectral_probe.extract.FeatureReader` of the reading options.

    ``options`` are the group's options under their command-line names (``workers``; a
    :class:`PoolChoice` or its value); the reader checks them (a bad value is one line, exit 2).
    """
    from spectral_probe.extract import FeatureReader

    names = {"workers": "num_workers"}
    settings = {names.get(k, k): getattr(v, "value", v) for k, v in options.items()}
    return FeatureReader(data, **settings)


console = Console(stderr=True)
stdout = Console(soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


class _Process:
    owned = False  # set by the console script: the process is the command's alone


def own_process() -> None:
    """Called by the console script: this process is the command's alone (see :func:`long_lived`)."""
    _Process.owned = True


@contextmanager
def long_lived() -> Iterator[None]:
    """Create the objects that live until exit (heavy imports, loaded models) without cyclic
    garbage collection, then freeze them: later collections, and the one at exit, skip them.

    Each full collection otherwise rescans the whole heap (torch's modules and a model:
    ~10^5 objects, 0.1-0.2 s a time, about 0.6 s of a ResNet-50 compare-weights). Only in the
    console script's own process (:func:`own_process`); embedded (tests, a notebook), a no-op.
    """
    if not _Process.owned:
        yield
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on one line (stderr) and exit with ``code``."""
    from rich.markup import escape  # a message may hold brackets: pip install 'pkg[extra]'

    console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def handles_errors(fn: F) -> F:
    """Turn the toolkit's user errors into one line and exit status 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SpectralProbeError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            fail("interrupted", code=130)

    return wrapper  # type: ignore[return-value]


@contextmanager
def progress_bar(
    description: str, *, quiet: bool = False
) -> Iterator[Callable[[int, int, str], None]]:
    """A rich progress bar on stderr; yields ``update(done, total, item)``."""
    if quiet:
        yield lambda done, total, item: None
        return
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}", style="progress.download"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[item]}", style="dim"),
    )
    with Progress(*columns, console=console, transient=True) as prog:
        task = prog.add_task(description, total=None, item="", count="")
        work = WorkDone()

        def update(done: int, total: int, item: str) -> None:
            completed, whole = work(done, total, item)
            prog.update(task, completed=completed, total=whole, item=item, count=f"{done}/{total}")

        update.expect = work.expect  # type: ignore[attr-defined]
        yield update


class WorkDone:
    """A progress bar's completed share, by count or, once :meth:`expect` was given each
    item's cost (a layer's ``m·n·min(m, n)``), by cost: its estimate of the time left then
    weighs a large layer more than a small one."""

    def __init__(self) -> None:
        self.costs: dict[str, float] = {}
        self.done = 0.0

    def expect(self, costs: dict[str, float]) -> None:
        """The cost of every item to come, by name (replacing earlier ones)."""
        self.costs, self.done = dict(costs), 0.0

    def __call__(self, done: int, total: int, item: str) -> tuple[float, float]:
        """``(completed, total)`` in cost units after ``item`` finished (count units without
        costs)."""
        if not self.costs:
            return float(done), float(total)
        whole = float(sum(self.costs.values()))
        self.done += self.costs.get(item, whole / max(len(self.costs), 1))
        return min(self.done, whole), whole


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        if value == 0:
            return "0"
        return f"{value:.2e}" if abs(value) < 1e-2 or abs(value) >= 1e4 else f"{value:.3f}"
    return str(value)


def print_frame(
    df: Any,
    columns: Sequence[str],
    *,
    title: str | None = None,
    headers: Sequence[str] | None = None,
) -> None:
    """Print selected DataFrame columns as a rich table on stdout."""
    import pandas as pd

    left = [not pd.api.types.is_numeric_dtype(df[col]) for col in columns]
    _print_table(df[list(columns)].itertuples(index=False), columns, left, title, headers)


def print_records(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    headers: Sequence[str] | None = None,
) -> None:
    """:func:`print_frame` of ``pandas.DataFrame(rows, columns=columns)``, without pandas.

    A column is right-aligned when it is numeric as pandas infers it for plain values: every
    value an int or a float (and at least one row).
    """
    left = [not rows or not all(isinstance(r[col], int | float) for r in rows) for col in columns]
    _print_table(([r[col] for col in columns] for r in rows), columns, left, title, headers)


def _print_table(
    rows: Iterable[Sequence[Any]],
    columns: Sequence[str],
    left: Sequence[bool],
    title: str | None,
    headers: Sequence[str] | None,
) -> None:
    table = Table(title=title, header_style="bold", show_lines=False, pad_edge=False)
    for i, (head, is_left) in enumerate(zip(headers or columns, left)):
        table.add_column(
            head,
            justify="left" if is_left else "right",
            no_wrap=True,
            overflow="ellipsis" if i == 0 else "fold",
            min_width=8 if i == 0 else None,
        )
    for row in rows:
        table.add_row(*(_fmt(v) for v in row))
    stdout.print(table)


def records_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """``pandas.DataFrame(rows, columns=columns).to_csv(index=False)`` for plain values."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator=os.linesep)
    writer.writerow(columns)
    writer.writerows([r[col] for col in columns] for r in rows)
    return buf.getvalue()


def print_json(payload: Any) -> None:
    """Strict JSON (NaN -> null) on stdout."""
    from spectral_probe._io import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(payload), indent=2, allow_nan=False) + "\n")


def parse_kinds(kinds: str) -> list[str]:
    """``conv,linear`` -> ``["conv", "linear"]`` (validated by the library)."""
    return [k.strip() for k in kinds.split(",") if k.strip()]


def invocation(command: str, options: dict[str, Any]) -> dict[str, Any]:
    """What to save as ``config.json`` beside results: the command, options, argv, versions."""
    import platform

    import torch

    from spectral_probe import __version__

    return {
        "command": command,
        "options": options,
        "argv": sys.argv,
        "versions": {
            "spectral_probe": __version__,
            "torch": str(torch.__version__),
            "python": platform.python_version(),
        },
    }


def save_and_show(
    result: Any,
    *,
    command: str,
    options: dict[str, Any],
    out: Any,
    figures: Callable[[Any], None] | None,
    json_out: bool,
    csv_out: bool,
    csv_frame: Any,
    summary: Callable[[], None],
    figures_done: Callable[[], None] | None = None,
) -> None:
    """The analysis commands' tail: an atomic ``--out`` folder, then JSON, CSV or a summary.

    ``--out`` receives the result's CSVs, ``results.json``, ``config.json`` (the invocation) and,
    when ``figures`` is given, whatever it writes into ``figures/``. ``figures`` runs first;
    one that hands the drawing to another process (a
    :class:`~spectral_probe.plotting.FigureWorker`) passes its ``wait`` as ``figures_done``,
    called once the tables are written and before the folder is committed.
    """
    from spectral_probe._io import staged_dir, write_json

    if out is not None:
        with staged_dir(out) as tmp:
            if figures is not None:
                figures(tmp / "figures")
            result.to_csv(tmp)
            result.to_json(tmp / "results.json")
            write_json(tmp / "config.json", invocation(command, options))
            if figures is not None and figures_done is not None:
                figures_done()
    if json_out:
        print_json(result.to_dict())
    elif csv_out:
        stdout.file.write(csv_frame.to_csv(index=False))
    else:
        summary()
    if out is not None and not json_out and not csv_out:
        console.print(f"wrote results to [bold]{out}[/]")
