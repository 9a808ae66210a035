"""The job executors: inline order and failures, SLURM configured without submitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from spectral_probe import _jobs
from spectral_probe.errors import ConfigError


def _double(x: int) -> dict[str, Any]:
    if x < 0:
        raise ConfigError(f"expected x >= 0, found {x}\n(second line)")
    return {"status": "finished", "value": 2 * x}


def _stop_at(x: int) -> dict[str, Any]:
    return {"status": "interrupted" if x == 1 else "finished"}


def test_inline_runs_in_order_and_records_failures(tmp_path: Path) -> None:
    seen: list[tuple[str, Any]] = []
    jobs = [("a", (1,)), ("b", (-2,)), ("c", (3,))]
    _jobs.run_jobs(
        _double, jobs, lambda k, o: seen.append((k, o)), executor="inline", folder=tmp_path
    )
    assert [k for k, _ in seen] == ["a", "b", "c"]
    assert seen[0][1]["value"] == 2 and seen[2][1]["value"] == 6
    assert seen[1][1] == {"status": "failed", "error": "(second line)"}


def test_an_interrupted_job_stops_the_inline_run(tmp_path: Path) -> None:
    seen: list[str] = []
    jobs = [(str(i), (i,)) for i in range(3)]
    _jobs.run_jobs(_stop_at, jobs, lambda k, o: seen.append(k), executor="inline", folder=tmp_path)
    assert seen == ["0", "1"]


def test_unknown_executor_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"expected executor in \['local', 'slurm', 'inline'\], found 'ray'"
    ):
        _jobs.run_jobs(_double, [], lambda k, o: None, executor="ray", folder=tmp_path)


def test_slurm_parameters_prefix_cluster_keys_and_keep_submitit_ones() -> None:
    params = _jobs.slurm_parameters(
        {"partition": "gpu", "gpus_per_node": 1, "slurm_qos": "high", "mem_gb": 32}, 8
    )
    assert params == {
        "slurm_partition": "gpu",
        "gpus_per_node": 1,
        "slurm_qos": "high",
        "mem_gb": 32,
        "slurm_array_parallelism": 8,
    }
    assert _jobs.slurm_parameters({"array_parallelism": 2}, 8)["slurm_array_parallelism"] == 2


class _FakeJob:
    def __init__(self, job_id: str, value: Any) -> None:
        self.job_id, self.value = job_id, value

    def result(self) -> Any:
        return self.value


class _FakeSlurm:
    """Stands in for ``submitit.AutoExecutor(cluster="slurm")``: records, submits nothing."""

    made: ClassVar[list[_FakeSlurm]] = []

    def __init__(self, folder: Path, cluster: str) -> None:
        self.folder, self.cluster, self.params = folder, cluster, {}
        self.calls: list[tuple[Any, tuple[list[Any], ...]]] = []
        _FakeSlurm.made.append(self)

    def update_parameters(self, **params: Any) -> None:
        self.params.update(params)

    def map_array(self, fn: Any, *columns: list[Any]) -> list[_FakeJob]:
        self.calls.append((fn, columns))
        return [_FakeJob(f"42_{i}", fn(*args)) for i, args in enumerate(zip(*columns))]


def test_slurm_is_one_array_of_requeueable_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import submitit

    monkeypatch.setattr(submitit, "AutoExecutor", _FakeSlurm)
    _FakeSlurm.made.clear()
    seen: dict[str, Any] = {}
    jobs = [("a", (1,)), ("b", (2,))]
    _jobs.run_jobs(
        _double,
        jobs,
        seen.__setitem__,
        executor="slurm",
        folder=tmp_path / "logs",
        parallel=3,
        slurm={"partition": "cpu", "timeout_min": 30},
    )
    (ex,) = _FakeSlurm.made
    assert ex.cluster == "slurm" and ex.folder == tmp_path / "logs" / "%j"
    assert ex.params == {"slurm_partition": "cpu", "timeout_min": 30, "slurm_array_parallelism": 3}
    ((fn, columns),) = ex.calls
    assert isinstance(fn, _jobs.Requeueable) and fn.fn is _double and columns == ([1, 2],)
    assert seen == {
        "a": {"status": "finished", "value": 2},
        "b": {"status": "finished", "value": 4},
    }
    submitted: dict[str, Any] = {}
    _jobs.run_jobs(
        _double, jobs, submitted.__setitem__, executor="slurm", folder=tmp_path, wait=False
    )
    assert submitted["b"] == {"status": "submitted", "error": "job 42_1"}
