"""``to_frame()`` and ``to_parquet()`` of the results: the tidy tables, copied, read back."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import torch
from torch import nn

from spectral_probe.analysis import FeatureSpectra, compare_weights
from spectral_probe.errors import ConfigError, MissingExtraError
from spectral_probe.training import SweepTable


@pytest.fixture(scope="module")
def comparison():
    torch.manual_seed(0)
    a = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    b = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    return compare_weights(a, b, device="cpu")


def test_compare_weights_to_frame_is_one_row_per_layer_and_a_copy(comparison):
    frame = comparison.to_frame()
    pd.testing.assert_frame_equal(frame, comparison.layers)
    assert len(frame) == 2 and frame["layer"].is_unique
    frame.loc[0, "layer"] = "changed"
    assert comparison.layers.loc[0, "layer"] != "changed"
    pd.testing.assert_frame_equal(comparison.to_frame("angles"), comparison.angles)
    with pytest.raises(ConfigError, match="found 'nope'"):
        comparison.to_frame("nope")


def test_other_results_have_their_main_table():
    summary = pd.DataFrame({"model": ["m"], "layer": ["penultimate"], "sigma1": [1.0]})
    empty = pd.DataFrame()
    spectra = FeatureSpectra(summary, empty, empty, empty)
    pd.testing.assert_frame_equal(spectra.to_frame(), summary)
    cells = pd.DataFrame({"dataset": ["digits"], "method": ["l2"], "rate": ["15%"], "mean": [90.0]})
    table = SweepTable(pd.DataFrame({"run_id": ["r"]}), cells, ("dataset", "method", "rate"), False)
    pd.testing.assert_frame_equal(table.to_frame(), cells)
    pd.testing.assert_frame_equal(table.to_frame("runs"), table.runs)


def test_to_parquet_round_trips_every_table(comparison, tmp_path):
    pytest.importorskip("pyarrow")
    paths = comparison.to_parquet(tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(f"{n}.parquet" for n in comparison.tables())
    for name, table in comparison.tables().items():
        back = pd.read_parquet(tmp_path / "out" / f"{name}.parquet")
        pd.testing.assert_frame_equal(back, table.reset_index(drop=True), check_dtype=False)


def test_to_parquet_without_pyarrow_names_the_extra(comparison, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingExtraError, match=r"spectral-probe\[parquet\]"):
        comparison.to_parquet(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_every_result_of_this_wave_is_a_tidy_result() -> None:
    """rank_models, esd_layers and validation results share to_frame/tables/to_parquet."""
    from spectral_probe._results import TidyResult
    from spectral_probe.analysis.esd import LayerESD
    from spectral_probe.transferability.rank import ModelRanking
    from spectral_probe.validation.analyse import ValidationResult
    from spectral_probe.validation.retrospective import RetrospectiveResult, retrospective

    for cls in (LayerESD, ModelRanking, ValidationResult, RetrospectiveResult):
        assert issubclass(cls, TidyResult) and cls.main_table
    result = retrospective()
    frame = result.to_frame()
    assert list(frame["policy"]) == list(result.policies["policy"])
    assert set(result.tables()) == {"policies", "cells", "regrets", "lodo", "pairs"}
