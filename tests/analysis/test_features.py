"""analysis.feature_spectrum: spectra against NumPy, streaming == batch, sampling, bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from spectral_probe.analysis import (
    FEATURE_SUMMARY_COLUMNS,
    BatchSpectra,
    NonFiniteFeaturesError,
    StreamingGram,
    aggregate_per_index,
    feature_spectrum,
    spectra_from_features,
)
from spectral_probe.data import load_dataset
from spectral_probe.errors import ConfigError, DataError
from spectral_probe.extract import extract_features
from spectral_probe.spectral import effective_rank, stable_rank, tail_energy

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Tiny(nn.Module):
    """A small image network with a classifier head named ``fc`` (fast on CPU)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 12, 3, stride=2)
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(12, 24, 3), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.body(self.conv(x))).flatten(1))


def _svdvals(x: np.ndarray) -> np.ndarray:
    return np.linalg.svd(x, compute_uv=False)


@st.composite
def batches(draw):  # type: ignore[no-untyped-def]
    b = draw(st.integers(2, 9))
    d = draw(st.integers(1, 14))
    n = draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((b, d)) * scale * rng.uniform(0.1, 2, size=d) for _ in range(n)]


@settings(max_examples=40, deadline=None)
@given(batches())
def test_batch_singular_values_match_numpy(mats):
    acc = BatchSpectra(chunk=2)
    for m in mats:
        acc.update(torch.from_numpy(m))
    got = acc.values().numpy()
    want = np.stack([_svdvals(m) for m in mats])
    assert got.shape == (len(mats), min(mats[0].shape))
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9 * want.max())


@settings(max_examples=40, deadline=None)
@given(batches(), st.booleans(), st.integers(1, 20))
def test_streaming_gram_equals_svd_of_the_stacked_matrix(mats, center, block):
    acc = StreamingGram(block=block)
    for m in mats:
        acc.update(torch.from_numpy(m))
    x = np.concatenate(mats)
    ref = _svdvals(x - x.mean(0) if center else x)
    got = acc.singular_values(center=center).numpy()
    assert got.shape == ref.shape and acc.n == len(x)
    # sigma = sqrt(lambda): absolute error ~ eps * sigma_1^2 / sigma_i, tested on the eigenvalues
    np.testing.assert_allclose(got**2, ref**2, atol=1e-10 * ref.max() ** 2)
    np.testing.assert_allclose(
        acc.mean().numpy(), x.mean(0), rtol=1e-10, atol=1e-12 * np.abs(x).max()
    )


def test_aggregate_against_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    v = rng.gamma(2.0, size=(7, 5))
    agg = aggregate_per_index(v, 0.9)
    assert agg["index"].tolist() == [1, 2, 3, 4, 5] and (agg["n"] == 7).all()
    lo, hi = stats.t.interval(0.9, 6, loc=v.mean(0), scale=stats.sem(v, axis=0))
    np.testing.assert_allclose(agg["ci_low"], lo)
    np.testing.assert_allclose(agg["ci_high"], hi)
    np.testing.assert_allclose(agg["std"], v.std(0, ddof=1))
    np.testing.assert_allclose(agg["median"], np.median(v, 0))
    one = aggregate_per_index(v[:1])
    assert one["ci_low"].isna().all() and (one["mean"] == v[0]).all()
    with pytest.raises(ConfigError, match="confidence level"):
        aggregate_per_index(v, 1.0)


def test_spectra_from_features_tables_and_summaries():
    rng = np.random.default_rng(1)
    mats = [torch.from_numpy(rng.standard_normal((6, 9))) for _ in range(4)]
    res = spectra_from_features({"m": mats}, layer="L")
    assert list(res.summary.columns) == list(FEATURE_SUMMARY_COLUMNS)
    s = np.stack([_svdvals(m.numpy()) for m in mats])
    sigma = res.curve("m", "L", "sigma")
    np.testing.assert_allclose(sigma["mean"], s.mean(0))
    norm = res.curve("m", "L", "sigma_norm")
    np.testing.assert_allclose(norm["mean"], (s / s[:, :1]).mean(0))
    energy = res.curve("m", "L", "energy")
    np.testing.assert_allclose(energy["mean"], (s**2 / (s**2).sum(1, keepdims=True)).mean(0))
    row = res.summary.iloc[0]
    assert (row["d"], row["batch_size"], row["k"], row["n_batches"], row["dataset_n"]) == (
        9,
        6,
        6,
        4,
        24,
    )
    assert row["small_half_energy"] == pytest.approx(
        np.mean([tail_energy(torch.from_numpy(r), 0.5) for r in s])
    )
    assert row["stable_rank"] == pytest.approx(
        np.mean([stable_rank(torch.from_numpy(r)) for r in s])
    )
    assert row["effective_rank"] == pytest.approx(
        np.mean([effective_rank(torch.from_numpy(r)) for r in s])
    )
    full = _svdvals(np.concatenate([m.numpy() for m in mats]))
    np.testing.assert_allclose(res.dataset["sigma"], full, rtol=1e-9)
    np.testing.assert_allclose(res.dataset["eigenvalue"], full**2 / 24, rtol=1e-9)
    assert res.dataset["cum_energy"].iloc[-1] == pytest.approx(1.0)
    assert len(res.batches) == 4 * 6 and set(res.batches["batch"]) == {1, 2, 3, 4}


def test_json_and_csv_round_trip(tmp_path):
    res = spectra_from_features([torch.randn(4, 6) for _ in range(3)], center=True)
    res.to_json(tmp_path / "r.json")
    payload = json.loads((tmp_path / "r.json").read_text())
    entry = payload["spectra"][0]
    assert payload["meta"]["center"] is True
    assert len(entry["spectrum"]["sigma"]["mean"]) == 4 and len(entry["batch_sigma"]) == 3
    assert len(entry["dataset"]["sigma"]) == 6
    names = sorted(p.name for p in res.to_csv(tmp_path))
    assert names == ["batches.csv", "dataset.csv", "spectrum.csv", "summary.csv"]
    back = pd.read_csv(tmp_path / "spectrum.csv")
    assert set(back["quantity"]) == {"sigma", "sigma_norm", "energy"}


def test_bad_feature_matrices():
    acc = BatchSpectra()
    with pytest.raises(ConfigError, match="at least 2"):
        acc.update(torch.randn(1, 5))
    acc.update(torch.randn(3, 5))
    with pytest.raises(ConfigError, match=r"shape \(3, 5\), found \(4, 5\) in batch 2"):
        acc.update(torch.randn(4, 5))
    bad = torch.randn(3, 5)
    bad[1, 2] = float("nan")
    acc.update(torch.randn(3, 5))
    acc.update(bad)
    with pytest.raises(NonFiniteFeaturesError, match="batch 3 of features"):
        acc.values()
    with pytest.raises(ConfigError, match="d = 20000"):
        StreamingGram().update(torch.zeros(2, 20000))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "test")


def test_streaming_dataset_spectrum_equals_batch_computation(digits):
    net = Tiny()
    kw = dict(batch_size=16, max_batches=5, image_size=16, device="cpu")
    res = feature_spectrum(net, digits, layers=[None, "body.1"], center=True, **kw)
    feats = extract_features(net, digits, [None, "body.1"], **kw)
    for layer in ("penultimate", "body.1"):
        x = feats[layer].double().numpy()
        rows = res.dataset[res.dataset["layer"] == layer]
        np.testing.assert_allclose(
            rows["sigma"] ** 2, _svdvals(x - x.mean(0)) ** 2, rtol=1e-8, atol=1e-8
        )
        per_batch = np.stack([_svdvals(b) for b in np.split(x, 5)])
        got = res.batches[res.batches["layer"] == layer]["sigma"].to_numpy().reshape(5, -1)
        np.testing.assert_allclose(got, per_batch, rtol=1e-6, atol=1e-6)
    assert res.meta["models"]["Tiny"]["sites"]["body.1"] == "output of 'body.1' (Conv2d)"


def test_models_see_the_same_batches_and_results_are_deterministic(digits):
    net = Tiny()
    kw = dict(batch_size=12, max_batches=4, image_size=16, device="cpu", seed=5)
    res = feature_spectrum([net, net], digits, labels=["a", "b"], **kw)
    assert res.models == ["a", "b"]
    a, b = (res.batches[res.batches["model"] == m]["sigma"].to_numpy() for m in "ab")
    np.testing.assert_array_equal(a, b)
    again = feature_spectrum({"a": net}, digits, **kw)
    np.testing.assert_array_equal(again.batches["sigma"].to_numpy(), a)
    other = feature_spectrum(net, digits, **{**kw, "seed": 6})
    assert not np.array_equal(other.batches["sigma"].to_numpy(), a)
    same = feature_spectrum([net, net], digits, **kw)
    assert same.models == ["Tiny", "Tiny #2"]


def test_interpolation_is_each_models_own_unless_given_and_recorded(digits):
    net = Tiny()  # a bare module: no preprocessing, so bilinear
    kw = dict(batch_size=8, max_batches=2, image_size=20, device="cpu", dataset_spectrum=False)
    own = feature_spectrum(net, digits, **kw)
    assert (
        own.meta["interpolation"] is None
        and own.meta["models"]["Tiny"]["interpolation"] == "bilinear"
    )
    same = feature_spectrum(net, digits, interpolation="Bilinear", **kw)
    np.testing.assert_array_equal(same.batches["sigma"].to_numpy(), own.batches["sigma"].to_numpy())
    cubic = feature_spectrum(net, digits, interpolation="bicubic", **kw)
    assert (
        cubic.meta["interpolation"] == "bicubic"
        and cubic.meta["models"]["Tiny"]["interpolation"] == "bicubic"
    )
    assert not np.allclose(cubic.batches["sigma"].to_numpy(), own.batches["sigma"].to_numpy())


def test_rate_samples_exact_per_class_counts(digits):
    net = Tiny()
    kw = dict(batch_size=8, image_size=16, device="cpu", max_batches=2)
    sizes = np.bincount(digits.targets)
    for rate, want in (
        ("15%", -(-15 * sizes // 100)),
        (0.3, -(-3 * sizes // 10)),
        ("5", np.full(10, 5)),
    ):
        res = feature_spectrum(net, digits, rate=rate, **kw)
        assert res.meta["class_counts"] == want.tolist() and res.meta["n_samples"] == want.sum()
        assert res.meta["rate"] == str(rate)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"batch_size": 1}, ConfigError, "batch size of at least 2"),
        ({"rate": 1.5}, DataError, "sampling rate in (0, 1]"),
        ({"rate": "500"}, DataError, "per-class count of at most"),
        ({"max_batches": 0}, ConfigError, "max_batches >= 1"),
        ({"layers": "conv2"}, ConfigError, "close matches: conv"),
        (
            {"rate": "1", "batch_size": 16},
            DataError,
            "at least one full batch of 16 samples, found 10",
        ),
        ({"ci": 0}, ConfigError, "confidence level"),
        ({"labels": ["x", "y"]}, ConfigError, "one label per model"),
        (
            {"interpolation": "box"},
            DataError,
            "expected an interpolation in bilinear, bicubic, nearest, found 'box'",
        ),
    ],
)
def test_bad_input(digits, kwargs, error, message):
    with pytest.raises(
        error, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")
    ):
        feature_spectrum(
            Tiny(), digits, image_size=16, device="cpu", **{"max_batches": 1, **kwargs}
        )


def test_nan_features_name_the_model_and_batch(digits):
    net = Tiny()
    with torch.no_grad():
        net.body[1].weight[0, 0, 0, 0] = float("nan")
    with pytest.raises(
        NonFiniteFeaturesError, match="found NaN/Inf in batch 1 of broken at penultimate"
    ):
        feature_spectrum(
            {"broken": net}, digits, batch_size=8, max_batches=2, image_size=16, device="cpu"
        )


def test_data_spec_and_split_through_the_registry(tmp_path):
    from _fixtures.datasets import make_cub200

    make_cub200(tmp_path, 3, 6, test_per_class=4)
    res = feature_spectrum(
        Tiny(), f"cub200:{tmp_path}", split="test", batch_size=4, image_size=16, device="cpu"
    )
    assert (
        res.meta["split"] == "test"
        and res.meta["n_samples"] == 12
        and res.summary["n_batches"].item() == 3
    )
    with pytest.raises(DataError, match="root directory"):
        feature_spectrum(Tiny(), f"cub200:{tmp_path / 'nope'}", device="cpu")


def test_bundled_lite0_on_a_few_batches(digits):
    res = feature_spectrum(
        "bundled:efficientnet_lite0",
        digits,
        batch_size=12,
        max_batches=2,
        image_size=32,
        device="cpu",
        dataset_spectrum=False,
    )
    row = res.summary.iloc[0]
    assert (row["d"], row["k"], row["n_batches"]) == (1280, 12, 2) and res.dataset.empty
    assert (
        row["site"] == "input of the classifier 'classifier'"
        and res.meta["models"]["bundled:efficientnet_lite0"]["image_size"] == 32
    )
    assert (
        res.meta["models"]["bundled:efficientnet_lite0"]["interpolation"] == "bicubic"
    )  # the model's own
    assert (res.curve("bundled:efficientnet_lite0")["mean"].diff().dropna() <= 1e-9).all()


def test_combine_spectra_relabels_and_keeps_parts():
    from spectral_probe.analysis import combine_spectra

    one = spectra_from_features([torch.randn(4, 6) for _ in range(2)])
    two = spectra_from_features({"p": [torch.randn(4, 6)], "q": [torch.randn(4, 6)]})
    both = combine_spectra({"15%": one, "run": two})
    assert both.models == ["15%", "run: p", "run: q"]
    assert set(both.meta["parts"]) == {"15%", "run"} and both.meta["ci"] == 0.95
    np.testing.assert_array_equal(both.curve("15%")["mean"], one.curve("features")["mean"])
    assert len(both.dataset) == 6 + 4 + 4
    with pytest.raises(ConfigError, match="at least one result"):
        combine_spectra({})
