"""``compare_weights`` with its layers split over jobs: this process, local processes or SLURM.

Each job runs :func:`~spectral_probe.analysis.compare_weights` on its share of the layers and
writes every finished layer atomically into one store (the per-layer resume store,
:mod:`spectral_probe.analysis._resume`); the merge is one more ``compare_weights`` over all
layers with that store, which reads every layer back and assembles the tables exactly as a
single-process run does. A killed or failed job loses nothing finished: the same call again
resumes.

Shards are balanced by cost, not by count: layers go, costliest first, to the shard with the
least work so far, a layer's cost being that of its decomposition, ``m·n·min(m, n)``
(:func:`layer_cost`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._jobs import check_executor, run_jobs
from ..errors import ConfigError, SpectralProbeError
from ..extract.weights import KINDS, pair_sources
from ._layers import layer_cost
from ._sources import close_all, open_pair, uses_sources
from ._weight_tables import WeightComparison, _device
from .weights import compare_weights

__all__ = ["compare_weights_sharded", "layer_cost", "plan_shards"]

#: options of :func:`compare_weights` a sharded run decides itself
_OWN = frozenset({"resume", "progress"})


def plan_shards(
    model_a: str,
    model_b: str,
    shards: int,
    *,
    arch_a: str | None = None,
    arch_b: str | None = None,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Sequence[str] = KINDS,
    split_fused: bool = False,
) -> list[list[tuple[str, tuple[int, int]]]]:
    """The layers of each shard, ``(name, (m, n))`` in depth order; empty shards dropped.

    Costliest layer first, each to the shard with the least :func:`layer_cost` so far (ties:
    the lowest shard), so that the shards take about the same time.
    """
    if shards < 1:
        raise ConfigError(f"expected --shards >= 1, found {shards}")
    src_a, src_b, _, opened = open_pair(model_a, model_b, arch_a, arch_b)
    try:
        paired = pair_sources(
            src_a, src_b, include=include, exclude=exclude, kinds=kinds, split_fused=split_fused
        )
        layers = [(sa.name, tuple(sa.matrix_shape)) for sa, _ in paired.pairs]
    finally:
        close_all(opened)
    load = [0] * shards
    owner = [0] * len(layers)
    for i in sorted(range(len(layers)), key=lambda i: (-layer_cost(layers[i][1]), i)):
        owner[i] = min(range(shards), key=lambda s: (load[s], s))
        load[owner[i]] += layer_cost(layers[i][1])
    plan = [[layer for layer, o in zip(layers, owner) if o == s] for s in range(shards)]
    return [shard for shard in plan if shard]  # type: ignore[misc]


def compare_weights_sharded(
    model_a: str,
    model_b: str,
    *,
    shards: int,
    store: str | Path | None = None,
    executor: str = "local",
    max_parallel: int | None = None,
    slurm: Mapping[str, Any] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    **options: Any,
) -> WeightComparison:
    """:func:`~spectral_probe.analysis.compare_weights` of two weight files or directories,
    its layers split into ``shards`` jobs (module doc); the result equals a single-process run.

    Args:
        model_a: the reference model: a directory, ``hf:`` id or state-dict file (read as
            tensors; a module or a built spec cannot travel to a job).
        model_b: the compared model, or a peft adapter directory.
        shards: number of jobs; each takes about the same share of the work.
        store: a folder every job can write (on a shared filesystem for SLURM): finished
            layers, and submitit's logs in ``store/jobs`` (removed after a run without
            failure). Default (not with SLURM): a temporary folder, removed at the end.
        executor: ``local`` (one process per shard), ``slurm`` (a job array) or ``inline``
            (the shards in turn, in this process).
        max_parallel: shards at once (local: default the CPU count; slurm: the array's
            parallelism, default all).
        slurm: SLURM parameters (``partition``, ``gpus_per_node``, ``timeout_min``...).
        progress: ``progress(done, total, label)`` in layers, as each shard ends.
        **options: any option of :func:`compare_weights` but ``resume`` and ``progress``.
            ``device="auto"`` is resolved here for ``local`` and ``inline``; SLURM jobs resolve
            it on their node (the merge then runs where they ran if this process lacks that
            device).

    Raises:
        ConfigError: models that are not weight files, a bad option, or a failed shard (its
            error's last line; the finished layers stay in ``store``: the same call resumes).
    """
    check_executor(executor)
    unknown = sorted(k for k in _OWN if options.pop(k, None) is not None)
    if unknown:
        raise ConfigError(f"expected no {', '.join(unknown)} with --shards, found them")
    arch_a, arch_b = options.get("arch_a"), options.get("arch_b")
    if not all(isinstance(m, str) for m in (model_a, model_b)) or not uses_sources(
        model_a, model_b, arch_a, arch_b
    ):
        raise ConfigError(
            "expected weight files or directories for --shards (read as tensors in each job), "
            f"found {model_a!r} and {model_b!r}"
        )
    if store is None:
        if executor == "slurm":
            raise ConfigError(
                "expected a store folder the SLURM jobs can write (--out), found none"
            )
        with tempfile.TemporaryDirectory(prefix="compare-weights-") as temporary:
            return compare_weights_sharded(
                model_a,
                model_b,
                shards=shards,
                store=temporary,
                executor=executor,
                max_parallel=max_parallel,
                slurm=slurm,
                progress=progress,
                **options,
            )
    plan = plan_shards(
        model_a,
        model_b,
        shards,
        arch_a=arch_a,
        arch_b=arch_b,
        include=options.get("include"),
        exclude=options.get("exclude"),
        kinds=options.get("kinds", KINDS),
        split_fused=options.get("split_fused", False),
    )
    store = Path(store)
    parallel = max_parallel or (len(plan) if executor == "slurm" else os.cpu_count() or 1)
    options = dict(options)
    if executor != "slurm":  # jobs and merge on one machine: one device for all
        options["device"] = str(_device(options.get("device", "auto")))
        if executor == "local" and options.get("workers") is None:
            options["workers"] = max(1, (os.cpu_count() or 1) // min(parallel, len(plan)))
    jobs = [
        (
            f"shard {i + 1}/{len(plan)}",
            (model_a, model_b, [name for name, _ in shard], str(store), options),
        )
        for i, shard in enumerate(plan)
    ]
    sizes = {key: len(shard) for (key, _), shard in zip(jobs, plan)}
    expect = getattr(progress, "expect", None)
    if expect is not None:  # the time left weighed by each shard's cost
        expect(
            {
                key: sum(layer_cost(shape) for _, shape in shard)
                for (key, _), shard in zip(jobs, plan)
            }
        )
    total, done = sum(sizes.values()), 0
    outcomes: dict[str, Any] = {}

    def record(key: str, outcome: Any) -> None:
        nonlocal done
        outcomes[key] = outcome
        done += sizes[key]
        if progress is not None:
            progress(done, total, key)

    logs = store / "jobs"
    run_jobs(
        run_shard,
        jobs,
        record,
        executor=executor,
        folder=logs,
        parallel=parallel,
        slurm=slurm,
    )
    failed = [
        (k, o)
        for k, o in outcomes.items()
        if not isinstance(o, Mapping) or o.get("status") != "finished"
    ]
    if failed:
        key, outcome = failed[0]
        error = outcome.get("error", outcome) if isinstance(outcome, Mapping) else outcome
        raise ConfigError(
            f"expected every shard to finish, found {len(failed)} of {len(jobs)} failed ({key}: "
            f"{error}); the finished layers are kept in {store}: the same command resumes"
        )
    devices = {o["device"] for o in outcomes.values()}
    merge_options = dict(
        options, device=devices.pop() if len(devices) == 1 else options.get("device", "auto")
    )
    try:
        _device(merge_options["device"])
    except ConfigError:  # jobs ran on a device this process lacks: merge where they ran
        merged: list[Any] = []
        run_jobs(
            merge_shards,
            [("merge", (model_a, model_b, str(store), merge_options))],
            lambda _, outcome: merged.append(outcome),
            executor=executor,
            folder=logs,
            slurm=slurm,
        )
        result = merged[0]
        if not isinstance(result, WeightComparison):
            error = result.get("error", result) if isinstance(result, Mapping) else result
            raise ConfigError(f"expected the merge job to finish, found: {error}") from None
    else:
        result = merge_shards(model_a, model_b, str(store), merge_options)
    shutil.rmtree(logs, ignore_errors=True)
    result.meta.update(shards=len(plan), executor=executor)
    return result


def _exact(names: Sequence[str]) -> str:
    """A regular expression matching exactly ``names`` (``re.search`` semantics)."""
    return "^(?:" + "|".join(re.escape(name) for name in names) + ")$"


def run_shard(
    model_a: str, model_b: str, names: list[str], store: str, options: dict[str, Any]
) -> dict[str, Any]:
    """One shard, as a job runs it: the layers ``names`` into ``store``; a short summary."""
    shard = dict(options, include=_exact(names), exclude=None)
    try:
        result = compare_weights(model_a, model_b, resume=store, **shard)
    except SpectralProbeError as exc:  # a failed shard is a result: the others go on
        text = str(exc).strip().splitlines()
        return {"status": "failed", "error": text[-1] if text else type(exc).__name__}
    return {"status": "finished", "layers": len(result.layers), "device": result.meta["device"]}


def merge_shards(
    model_a: str, model_b: str, store: str, options: dict[str, Any]
) -> WeightComparison:
    """The whole comparison, every layer read back from ``store`` (computed where missing)."""
    return compare_weights(model_a, model_b, resume=store, **options)
