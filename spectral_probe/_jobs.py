"""Run a list of jobs in this process, in local processes or as a SLURM job array (submitit).

The executors of sweeps (:mod:`spectral_probe.training.sweep`), LASER sweeps and sharded
weight comparisons (:mod:`spectral_probe.analysis.sharded`). A job is ``(key, args)``: the
executor calls ``fn(*args)`` (``fn`` a module-level function, so that submitit can pickle it)
and reports ``record(key, outcome)`` as each job ends, where ``outcome`` is what ``fn``
returned or, for a job that raised, ``{"status": "failed", "error": LAST LINE}``.

- ``inline``: in this process, in order; a :class:`~spectral_probe.errors.SpectralProbeError`
  is a failed job, anything else propagates. An outcome whose ``status`` is ``interrupted``
  stops the remaining jobs (they were never started).
- ``local``: submitit's ``LocalExecutor``, one process per job, ``parallel`` at a time.
- ``slurm``: submitit's SLURM executor, one job array; a preempted or timed-out job is
  requeued with the same arguments (:class:`Requeueable`). ``wait=False`` records each job as
  ``{"status": "submitted", "error": "job ID"}`` and returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, SpectralProbeError

__all__ = ["EXECUTORS", "Job", "Requeueable", "check_executor", "run_jobs", "slurm_parameters"]

#: the executors, in the order the CLI lists them
EXECUTORS = ("local", "slurm", "inline")

Job = tuple[str, tuple[Any, ...]]
Record = Callable[[str, Any], None]

#: submitit parameters passed as they are; any other key ``k`` becomes ``slurm_k``
_PLAIN = frozenset(
    {
        "timeout_min",
        "gpus_per_node",
        "cpus_per_task",
        "mem_gb",
        "nodes",
        "tasks_per_node",
        "name",
        "stderr_to_stdout",
    }
)


def check_executor(kind: str) -> str:
    """``kind`` if it names an executor, else a one-line :class:`ConfigError`."""
    if kind not in EXECUTORS:
        raise ConfigError(f"expected executor in {list(EXECUTORS)}, found {kind!r}")
    return kind


def slurm_parameters(slurm: Mapping[str, Any], parallel: int) -> dict[str, Any]:
    """submitit's parameters for a job array: ``partition`` -> ``slurm_partition`` and so on,
    with ``slurm_array_parallelism = parallel`` unless given.

    Example:
        >>> slurm_parameters({"partition": "gpu", "timeout_min": 60}, 4)
        {'slurm_partition': 'gpu', 'timeout_min': 60, 'slurm_array_parallelism': 4}
    """
    params = {
        k if k in _PLAIN or k.startswith("slurm_") else f"slurm_{k}": v for k, v in slurm.items()
    }
    params.setdefault("slurm_array_parallelism", parallel)
    return params


class Requeueable:
    """``fn`` as submitted to SLURM: on preemption or timeout submitit requeues the call with
    the same arguments (the job resumes from whatever it saved)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def failure(exc: BaseException) -> dict[str, Any]:
    """A failed job's outcome: its error's last line, at most 300 characters."""
    text = str(exc).strip().splitlines()
    return {"status": "failed", "error": (text[-1] if text else type(exc).__name__)[:300]}


def run_jobs(
    fn: Callable[..., Any],
    jobs: Sequence[Job],
    record: Record,
    *,
    executor: str,
    folder: str | Path,
    parallel: int = 1,
    slurm: Mapping[str, Any] | None = None,
    wait: bool = True,
) -> None:
    """Run ``fn(*args)`` for every ``(key, args)`` of ``jobs`` on ``executor`` (module doc).

    Args:
        fn: a module-level function (pickled by reference for ``local`` and ``slurm``).
        jobs: ``(key, args)`` pairs; ``key`` is what ``record`` receives.
        record: called as ``record(key, outcome)`` when each job ends.
        executor: ``inline``, ``local`` or ``slurm``.
        folder: submitit's log folder (``folder/%j``); not used inline.
        parallel: jobs at once (local) or the array's parallelism (slurm).
        slurm: SLURM parameters (``partition``, ``gpus_per_node``, ``timeout_min``...); for
            ``local``, ``timeout_min`` and ``gpus_per_node`` apply.
        wait: wait for SLURM jobs to end (local and inline always wait).
    """
    runner = {"inline": _run_inline, "local": _run_local, "slurm": _run_slurm}[
        check_executor(executor)
    ]
    runner(fn, list(jobs), record, Path(folder), max(int(parallel), 1), dict(slurm or {}), wait)


def _run_inline(fn: Callable[..., Any], jobs: list[Job], record: Record, *_: Any) -> None:
    for key, args in jobs:
        try:
            outcome = fn(*args)
        except SpectralProbeError as exc:
            outcome = failure(exc)
        record(key, outcome)
        if isinstance(outcome, Mapping) and outcome.get("status") == "interrupted":
            break  # SIGTERM / request_stop: the remaining jobs are not started


def _run_local(
    fn: Callable[..., Any],
    jobs: list[Job],
    record: Record,
    folder: Path,
    parallel: int,
    slurm: dict[str, Any],
    _wait: bool,
) -> None:
    import submitit

    ex = submitit.LocalExecutor(folder=folder / "%j")
    ex.update_parameters(
        timeout_min=int(slurm.get("timeout_min", 60 * 24 * 7)),
        gpus_per_node=int(slurm.get("gpus_per_node", 0)),
    )
    queue = list(jobs)
    running: list[tuple[Any, str]] = []
    while queue or running:
        while queue and len(running) < parallel:
            key, args = queue.pop(0)
            running.append((ex.submit(fn, *args), key))
        time.sleep(0.2)
        for job, key in list(running):
            if job.done():
                running.remove((job, key))
                try:
                    outcome = job.result()
                except Exception as exc:  # submitit re-raises the job's error
                    outcome = failure(exc)
                record(key, outcome)


def _run_slurm(
    fn: Callable[..., Any],
    jobs: list[Job],
    record: Record,
    folder: Path,
    parallel: int,
    slurm: dict[str, Any],
    wait: bool,
) -> None:
    import submitit

    ex = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    ex.update_parameters(**slurm_parameters(slurm, parallel))
    if not jobs:
        return
    keys = [key for key, _ in jobs]
    columns = [list(column) for column in zip(*(args for _, args in jobs))]
    submitted = ex.map_array(Requeueable(fn), *columns)
    for job, key in zip(submitted, keys):
        if not wait:
            record(key, {"status": "submitted", "error": f"job {job.job_id}"})
            continue
        try:
            outcome = job.result()
        except Exception as exc:
            outcome = failure(exc)
        record(key, outcome)
