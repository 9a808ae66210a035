"""Named modules of a network (spectral_probe.extract.modules): built ones, and those a state
dict's tensor names hold when it is read as tensors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spectral_probe.errors import ConfigError
from spectral_probe.extract import module_table, resolve_module, source_module_table
from spectral_probe.sources import StateDictSource


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3),
        nn.Sequential(nn.BatchNorm2d(8), nn.ReLU()),
        nn.MultiheadAttention(8, 2),
        nn.Linear(8, 4),
    )


def test_module_table_counts_parameters_own_and_below() -> None:
    df = module_table(_net())
    rows = {r.name: (r.type, r.params, r.leaf) for r in df.itertuples()}
    assert rows["0"] == ("Conv2d", 8 * 3 * 9 + 8, True)
    assert rows["1"] == ("Sequential", 2 * 8, False)  # the norm's weight and bias, not its stats
    assert rows["1.1"] == ("ReLU", 0, True)
    assert rows["2"] == ("MultiheadAttention", 3 * 8 * 8 + 3 * 8 + 8 * 8 + 8, False)
    assert list(module_table(_net(), include=r"^1", exclude="1$")["name"]) == ["1.0"]
    with pytest.raises(ConfigError, match="expected a regular expression"):
        module_table(_net(), include="(")


def test_the_state_dict_of_a_network_lists_the_modules_that_hold_tensors() -> None:
    net = _net()
    got = source_module_table(StateDictSource(net.state_dict(), "net"))
    rows = {r.name: (r.type, r.params, r.leaf) for r in got.itertuples()}
    assert list(rows) == ["0", "1", "1.0", "2", "2.out_proj", "3"]  # a ReLU holds nothing
    assert rows["0"] == ("Conv2d", 8 * 3 * 9 + 8, True)
    assert rows["1"] == ("", 4 * 8 + 1, False)  # running statistics and the batch count too
    assert rows["1.0"] == ("", 4 * 8 + 1, True)
    assert rows["2"] == (
        "MultiheadAttention",
        module_table(net).set_index("name").loc["2", "params"],
        False,
    )
    assert rows["3"] == ("Linear", 8 * 4 + 4, True)
    only = source_module_table(StateDictSource(net.state_dict(), "net"), include=r"^2")
    assert list(only["name"]) == ["2", "2.out_proj"]


def test_resolve_module_names_close_matches() -> None:
    net = _net()
    assert resolve_module(net, "1.0") is net[1][0]
    with pytest.raises(ConfigError, match=r"found '1\.00'; close matches: .*1\.0"):
        resolve_module(net, "1.00")
    with pytest.raises(ConfigError, match="spectral-probe layers MODEL --modules"):
        resolve_module(net, "zzzzzz")
