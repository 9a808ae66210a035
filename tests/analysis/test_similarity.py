"""``compare_features``: two models, one data spec, every layer pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spectral_probe.analysis import compare_features, select_layers
from spectral_probe.analysis.similarity import default_layers
from spectral_probe.errors import ConfigError
from spectral_probe.extract import extract_features
from spectral_probe.similarity import DegenerateFeaturesError, linear_cka, procrustes

pytestmark = pytest.mark.usefixtures("one_torch_thread")
SMALL = {"batch_size": 12, "max_batches": 3, "image_size": 32, "device": "cpu"}


def _mlp(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(3 * 32 * 32, 16),
        nn.ReLU(),
        nn.Linear(16, 8),
        nn.ReLU(),
        nn.Linear(8, 10),
    )


def test_default_and_regex_layers():
    net = nn.Module()
    net.blocks = nn.Sequential(nn.Sequential(nn.Linear(2, 2)), nn.Linear(2, 2))
    net.head = nn.Linear(2, 2)
    assert default_layers(net) == ["blocks.0", "blocks.1", "penultimate"]
    assert select_layers(net, r"blocks\.\d+$|penultimate") == [
        "blocks.0",
        "blocks.1",
        "penultimate",
    ]
    with pytest.raises(ConfigError, match="match modules"):
        select_layers(net, "nothing")
    with pytest.raises(ConfigError, match="regular expression"):
        select_layers(net, "(")


def test_values_equal_the_pure_functions_on_the_extracted_features():
    a, b = _mlp(0), _mlp(1)
    res = compare_features(
        a, b, "digits", layers=r"^[24]$", metrics=["cka", "debiased-cka", "procrustes"], **SMALL
    )
    assert res.meta["n_samples"] == 36 and res.meta["sample"] == 36
    fa = extract_features(
        a, _digits(), ["2", "4"], batch_size=12, max_batches=3, image_size=32, device="cpu"
    )
    fb = extract_features(
        b, _digits(), ["2", "4"], batch_size=12, max_batches=3, image_size=32, device="cpu"
    )
    for row in res.pairs.itertuples():
        x, y = fa[row.layer_a].numpy(), fb[row.layer_b].numpy()
        if row.metric == "procrustes":
            ref = procrustes(x, y)
        else:
            ref = linear_cka(x, y, debiased=row.metric == "debiased-cka")
        assert row.value == pytest.approx(ref, abs=1e-9)
    assert res.matched[["layer_a", "layer_b", "d_a", "d_b"]].values.tolist() == [
        ["2", "2", 16, 16],
        ["4", "4", 8, 8],
    ]
    assert res.pairs["matched"].sum() == 2 * 3
    assert res.matrix("cka").shape == (2, 2)
    with pytest.raises(ConfigError, match="metric"):
        res.matrix("pwcca")


def _digits():
    from spectral_probe.data import load_dataset

    return load_dataset("digits", "test")


def test_same_model_is_identical_and_layers_b_pairs_by_position():
    a = _mlp(0)
    res = compare_features(
        a,
        a,
        "digits",
        layers=r"^[24]$",
        layers_b=r"^[13]$",
        metrics=["cka", "rbf-cka", "svcca", "pwcca", "procrustes"],
        **SMALL,
    )
    assert res.matched[["layer_a", "layer_b"]].values.tolist() == [
        ["2", "1"],
        ["4", "3"],
    ]  # ReLU vs Linear
    same = compare_features(
        a, a, "digits", layers=r"^[24]$", metrics=["cka", "pwcca", "procrustes"], **SMALL
    )
    np.testing.assert_allclose(same.matched[["cka", "pwcca"]].to_numpy(), 1.0, atol=1e-9)
    np.testing.assert_allclose(same.matched["procrustes"].to_numpy(), 0.0, atol=1e-9)


def test_bad_input():
    a = _mlp(0)
    with pytest.raises(ConfigError, match="metric"):
        compare_features(a, a, "digits", metrics=["nope"], **SMALL)
    with pytest.raises(ConfigError, match="batch size"):
        compare_features(a, a, "digits", **{**SMALL, "batch_size": 1})
    with pytest.raises(ConfigError, match="sample"):
        compare_features(a, a, "digits", sample=2, **SMALL)
    dead = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 4), nn.ReLU(), nn.Linear(4, 3))
    with torch.no_grad():
        dead[1].weight.zero_()
        dead[1].bias.fill_(-1.0)  # the ReLU outputs 0 for every sample
    with pytest.raises(DegenerateFeaturesError, match="constant"):
        compare_features(dead, a, "digits", layers="^2$", layers_b="^2$", **SMALL)
