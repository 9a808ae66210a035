"""compare_weights split over jobs: the merged result equals a single-process run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from spectral_probe.analysis import compare_weights
from spectral_probe.analysis.sharded import compare_weights_sharded, layer_cost, plan_shards
from spectral_probe.errors import ConfigError
from spectral_probe.extract import SOURCE_KINDS as KINDS

from ..sources.conftest import perturbed, tiny_llama

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    root = tmp_path_factory.mktemp("pair")
    tiny_llama().save_pretrained(root / "a", max_shard_size="20KB")
    perturbed(tiny_llama()).to(torch.bfloat16).save_pretrained(root / "b")
    return str(root / "a"), str(root / "b")


def _assert_same(merged: object, single: object) -> None:
    for name in ("angles", "principal", "skipped", "intruders", "update", "esd"):
        pd.testing.assert_frame_equal(getattr(merged, name), getattr(single, name))
    cols = [c for c in single.layers.columns if c != "seconds"]  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(merged.layers[cols], single.layers[cols])  # type: ignore[attr-defined]
    assert merged.meta.get("notes") == single.meta.get("notes")  # type: ignore[attr-defined]


def test_plan_balances_cost_not_count() -> None:
    assert layer_cost((3, 5)) == 45 and layer_cost((5, 3)) == 45


def test_shards_cover_every_layer_once_balanced_by_cost(pair: tuple[str, str]) -> None:
    plan = plan_shards(*pair, 3, kinds=KINDS)
    names = [name for shard in plan for name, _ in shard]
    single = compare_weights(*pair, device="cpu", workers=1, kinds=KINDS, intruder_k=0)
    assert sorted(names) == sorted(single.layers["layer"]) and len(set(names)) == len(names)
    loads = [sum(layer_cost(shape) for _, shape in shard) for shard in plan]
    biggest = max(layer_cost(shape) for shard in plan for _, shape in shard)
    assert max(loads) - min(loads) <= biggest  # greedy by cost: within one layer of each other
    assert len(plan_shards(*pair, 100, kinds=KINDS)) == len(names)  # no empty shard


def test_inline_shards_merge_into_the_single_process_result(
    pair: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import spectral_probe.analysis.weights as weights

    single = compare_weights(*pair, device="cpu", workers=1, kinds=KINDS, esd=True)
    calls: list[int] = []
    original = weights._compare_pair
    monkeypatch.setattr(weights, "_compare_pair", lambda *a: calls.append(1) or original(*a))
    seen: list[tuple[int, int, str]] = []
    merged = compare_weights_sharded(
        *pair,
        shards=3,
        store=tmp_path / "store",
        executor="inline",
        progress=lambda *a: seen.append(a),
        device="cpu",
        workers=1,
        kinds=KINDS,
        esd=True,
    )
    _assert_same(merged, single)
    assert len(calls) == len(
        single.layers
    )  # each layer computed once, by its shard; the merge reads
    assert [s[:2] for s in seen][-1] == (len(single.layers), len(single.layers)) and len(seen) == 3
    assert merged.meta["shards"] == 3 and not (tmp_path / "store" / "jobs").exists()


def test_local_processes_merge_into_the_single_process_result(
    pair: tuple[str, str], tmp_path: Path
) -> None:
    single = compare_weights(*pair, device="cpu", workers=1, include="layers")
    merged = compare_weights_sharded(
        *pair,
        shards=2,
        store=tmp_path / "store",
        executor="local",
        max_parallel=2,
        device="cpu",
        include="layers",
    )
    _assert_same(merged, single)
    assert merged.meta["executor"] == "local"


def test_a_failed_shard_names_itself_and_keeps_the_finished_layers(
    tmp_path: Path,
) -> None:
    model = tiny_llama()
    model.save_pretrained(tmp_path / "a")
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight[0, 0] = float("nan")
    model.save_pretrained(tmp_path / "b")
    store = tmp_path / "store"
    with pytest.raises(ConfigError, match=r"found 1 of 2 failed \(shard \d/2: expected finite"):
        compare_weights_sharded(
            str(tmp_path / "a"), str(tmp_path / "b"), shards=2, store=store, executor="inline"
        )
    assert list(store.glob("*.pt"))  # the other shard's layers, for the rerun
    res = compare_weights_sharded(
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        shards=2,
        store=store,
        executor="inline",
        skip_nonfinite=True,
    )
    assert res.layers.set_index("layer").loc["layers.1.mlp.down_proj", "status"] == "nonfinite-b"


def test_models_that_are_not_weight_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected weight files or directories for --shards"):
        compare_weights_sharded(
            "torchvision:resnet18", "torchvision:resnet18", shards=2, store=tmp_path
        )
    with pytest.raises(ConfigError, match="expected no resume with --shards"):
        compare_weights_sharded("a", "b", shards=2, store=tmp_path, resume=tmp_path)


class _Job:
    def __init__(self, value: Any) -> None:
        self.job_id, self.value = "7_0", value

    def result(self) -> Any:
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


def _fake_slurm(monkeypatch: pytest.MonkeyPatch, device: str | None = None) -> list[Any]:
    """submitit's SLURM executor replaced by one that records its parameters and runs each
    array task's pickled call here (``device``: what the shard jobs report as theirs)."""
    import pickle

    import submitit

    made: list[Any] = []

    class FakeSlurm:
        def __init__(self, folder: Path, cluster: str) -> None:
            self.folder, self.cluster, self.params, self.tasks = folder, cluster, {}, []
            made.append(self)

        def update_parameters(self, **params: Any) -> None:
            self.params.update(params)

        def map_array(self, fn: Any, *columns: list[Any]) -> list[_Job]:
            calls = [pickle.loads(pickle.dumps((fn, args))) for args in zip(*columns)]
            self.tasks += [f.fn.__name__ for f, _ in calls]
            jobs = []
            for f, args in calls:
                try:
                    value = f(*args)
                except Exception as exc:
                    value = exc
                if device is not None and isinstance(value, dict):
                    value["device"] = device
                jobs.append(_Job(value))
            return jobs

    monkeypatch.setattr(submitit, "AutoExecutor", FakeSlurm)
    return made


def test_slurm_shards_are_one_configured_array(
    pair: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Configured without a cluster (see :func:`_fake_slurm`)."""
    made = _fake_slurm(monkeypatch)
    store = tmp_path / "shared" / "cw.layers"
    merged = compare_weights_sharded(
        *pair,
        shards=2,
        store=store,
        executor="slurm",
        slurm={"partition": "cpu", "timeout_min": 30},
        device="cpu",
    )
    (ex,) = made  # one array; the merge ran here, where the jobs' device is
    assert ex.cluster == "slurm" and ex.folder == store / "jobs" / "%j"
    assert ex.tasks == ["run_shard", "run_shard"]
    assert ex.params == {"slurm_partition": "cpu", "timeout_min": 30, "slurm_array_parallelism": 2}
    _assert_same(merged, compare_weights(*pair, device="cpu", workers=1))


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_jobs_on_a_device_this_process_lacks_merge_as_one_more_job(
    pair: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _fake_slurm(monkeypatch, device="cuda")
    with pytest.raises(ConfigError, match="expected the merge job to finish.*CUDA"):
        compare_weights_sharded(*pair, shards=2, store=tmp_path / "s", executor="slurm")
    assert [ex.tasks for ex in made] == [["run_shard", "run_shard"], ["merge_shards"]]
