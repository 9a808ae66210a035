"""``esd_layers`` and ``compare_weights(esd=True)`` on small models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from spectral_probe.analysis import compare_weights, esd_layers
from spectral_probe.spectral.esd import conv_slice_eigenvalues, eigenvalues, esd_metrics


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(8, 24, 3),
        nn.Conv2d(24, 24, 3, groups=24),
        nn.Flatten(),
        nn.Linear(40, 30),
        nn.Linear(30, 4),
    )


def test_esd_layers_rows_match_the_pure_functions(tmp_path):
    model = _model(0)
    res = esd_layers(model, workers=1)
    frame = res.layers.set_index("layer")
    assert list(frame.index) == ["0", "1", "3", "4"]
    ref = esd_metrics(eigenvalues(model[3].weight.detach()), 30, 40)
    assert frame.loc["3", "alpha"] == pytest.approx(ref["alpha"], rel=1e-12)
    # the last Linear has 4 eigenvalues: missing, with its reason
    assert math.isnan(frame.loc["4", "alpha"]) and "fewer than 8" in frame.loc["4", "alpha_reason"]
    assert res.summary()["fitted"] == 3
    sliced = esd_layers(model, conv="slices", workers=1).layers.set_index("layer")
    assert (
        sliced.loc["0", "conv"] == "slices" and sliced.loc["1", "conv"] == "unfolded"
    )  # grouped stays unfolded
    ref = esd_metrics(conv_slice_eigenvalues(model[0].weight), 24, 72)
    assert sliced.loc["0", "alpha"] == pytest.approx(ref["alpha"], rel=1e-12)
    paths = res.to_csv(tmp_path)
    assert {p.name for p in paths} == {"esd.csv", "eigenvalues.csv"}
    assert res.to_dict()["layers"][0]["layer"] == "0"


def test_compare_weights_esd_equals_esd_layers_of_each_model():
    a, b = _model(0), _model(1)
    cmp = compare_weights(a, b, esd=True, workers=1)
    ea = esd_layers(a, workers=1).layers.set_index("layer")
    eb = esd_layers(b, workers=1).layers.set_index("layer")
    for _, row in cmp.layers.iterrows():
        for col, ref in (("alpha_a", ea), ("alpha_b", eb)):
            expected = ref.loc[row["layer"], "alpha"]
            assert (math.isnan(row[col]) and math.isnan(expected)) or row[col] == pytest.approx(
                expected, rel=1e-9
            )
    assert set(cmp.esd["model"]) == {"a", "b"}
    assert cmp.meta["esd_summary"]["a"]["mean_alpha"] == pytest.approx(ea["alpha"].mean(), rel=1e-9)
    assert "esd" in cmp.to_dict() and "alpha_a" not in compare_weights(a, b, workers=1).layers


def test_bad_conv_mode_is_a_config_error():
    from spectral_probe.errors import ConfigError

    with pytest.raises(ConfigError, match="unfolded or slices"):
        esd_layers(_model(0), conv="kernels")  # type: ignore[arg-type]
