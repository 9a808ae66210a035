"""``FinetuneConfig.log``: TensorBoard event files, an MLflow sqlite store and CSV, read back."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from spectral_probe.errors import ConfigError, MissingExtraError
from spectral_probe.training import StopAfter, finetune
from spectral_probe.training.loggers import build_loggers, check_loggers, flat_config

from .conftest import tiny_config


def test_check_loggers_names_and_duplicates():
    assert check_loggers(["csv", "tensorboard", "csv"]) == ("csv", "tensorboard")
    with pytest.raises(ConfigError, match="found 'wandb'"):
        check_loggers(["wandb"])
    with pytest.raises(ConfigError, match="found 'wandb'"):
        tiny_config(log=("wandb",)).resolve()


def test_log_is_operational_and_survives_json():
    plain, logged = tiny_config(), tiny_config(log=["csv"])
    assert tiny_config(log="csv").log == ("csv",)
    assert plain.run_id == logged.run_id  # logging does not change what a run computes
    again = type(logged).from_dict(logged.resolve().to_dict())
    assert again.log == ("csv",)


def test_flat_config():
    flat = flat_config({"a": 1, "hp": {"bss.eta": 0.001}, "log": ["csv", "mlflow"], "x": None})
    assert flat == {"a": 1, "hp.bss.eta": 0.001, "log": "csv,mlflow"}


@pytest.mark.parametrize(
    ("target", "module"), [("tensorboard", "tensorboard"), ("mlflow", "mlflow")]
)
def test_missing_package_names_the_extra(monkeypatch, target, module):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(MissingExtraError, match=rf"spectral-probe\[{module}\]"):
        build_loggers([target])


def test_tensorboard_mlflow_and_csv_from_one_run(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    mlflow = pytest.importorskip("mlflow")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "loggers-test")
    monkeypatch.chdir(tmp_path)  # the store's default artifact folder (./mlruns) goes here
    cfg = tiny_config(
        method="l2+bss", iterations=20, val=0.1, eval_every=10, log=("tensorboard", "mlflow", "csv")
    )
    stopped = finetune(cfg, tmp_path / "run", hooks=[StopAfter(10)])
    assert stopped.status == "interrupted"
    result = finetune(cfg, tmp_path / "run")  # resumed: the same TensorBoard folder and MLflow run
    assert result.status == "finished"
    logged = result.metrics.dropna(subset=["loss"])

    # TensorBoard: the loss of every metrics.jsonl line, and the spectrum histogram
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"), size_guidance={"histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"train/loss", "train/loss_bss", "train/lr", "val/accuracy"} <= set(tags["scalars"])
    losses = {e.step: e.value for e in acc.Scalars("train/loss")}
    assert sorted(losses) == logged["iteration"].tolist()
    assert [losses[i] for i in logged["iteration"]] == pytest.approx(
        logged["loss"].tolist(), rel=1e-6
    )
    assert "features/singular_values" in tags["histograms"]
    hist = acc.Histograms("features/singular_values")[-1].histogram_value
    assert hist.num == len(result.spectra[result.spectra["iteration"] == 20])

    # MLflow: the run with its params, metrics history, checkpoint and spectra artifacts
    client = mlflow.tracking.MlflowClient(uri)
    exp = client.get_experiment_by_name("loggers-test")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == result.run_id
    assert run.data.params["method"] == "l2+bss" and float(run.data.params["hp.bss.eta"]) == 0.001
    history = client.get_metric_history(run.info.run_id, "train/loss")
    assert [m.step for m in history] == logged["iteration"].tolist()
    assert run.data.metrics["final/test_accuracy"] == pytest.approx(result.test_accuracy)
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"config.json", "final.json", "metrics.jsonl", "model", "spectra"} <= names
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {
        "model/model.safetensors",
        "model/model.json",
    }

    # CSV: the run's tidy tables
    metrics = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert metrics["loss"].dropna().tolist() == pytest.approx(logged["loss"].tolist())
    spectra = pd.read_csv(tmp_path / "run" / "spectra.csv")
    assert list(spectra.columns) == ["iteration", "index", "sigma"] and len(spectra) == len(
        result.spectra
    )
