"""extract.reader: one FeatureReader, its checks, its two batch modes, and the model labels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from spectral_probe.data import load_dataset
from spectral_probe.errors import ConfigError, DataError, NonFiniteFeaturesError
from spectral_probe.extract import FeatureReader, extract_features, label_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Tiny(nn.Module):
    """A small image network with a classifier head named ``fc``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 6, 3, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(torch.relu(self.conv(x))).flatten(1))


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", "test")


SMALL = dict(batch_size=8, image_size=16, device="cpu")


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        ({"batch_size": 0}, ConfigError, "batch size of at least 1, found 0"),
        ({"batch_size": 2.0}, ConfigError, "batch size of at least 1, found 2.0"),
        ({"batch_size": True}, ConfigError, "batch size of at least 1, found True"),
        ({"max_batches": 0}, ConfigError, "max_batches >= 1, found 0"),
        ({"max_samples": 1}, ConfigError, "max_samples >= 2, found 1"),
        ({"image_size": 0}, DataError, "positive image size, found 0"),
        ({"interpolation": "box"}, DataError, "interpolation in bilinear, bicubic, nearest"),
        ({"pool": "max"}, ConfigError, "pool in"),
        ({"num_workers": -1}, ConfigError, "num_workers >= 0"),
        ({"max_length": 0}, ConfigError, "max_length >= 1"),
        ({"device": "tpu:x"}, ConfigError, "device auto, cpu or cuda"),
    ],
)
def test_settings_are_checked_when_the_reader_is_built(settings, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(")):
        FeatureReader("digits", **settings)


def test_a_reader_is_frozen_and_normalises_the_filter():
    reader = FeatureReader("digits", interpolation="Bicubic")
    assert reader.interpolation == "bicubic"
    with pytest.raises(AttributeError):
        reader.batch_size = 4  # type: ignore[misc]
    with pytest.raises(ConfigError, match="max_batches"):
        reader.replace(max_batches=0)  # a replaced setting is checked again


def test_of_keeps_a_readers_settings_and_fills_a_specs_defaults():
    reader = FeatureReader("digits", split="test", batch_size=12)
    assert FeatureReader.of(reader, {"batch_size": 64}) is reader
    assert FeatureReader.of(reader, {"batch_size": 64}, seed=3).seed == 3
    assert FeatureReader.of(reader, {"batch_size": 64}, seed=3).batch_size == 12
    fresh = FeatureReader.of("digits", {"split": "train", "batch_size": 64}, batch_size=5)
    assert (fresh.split, fresh.batch_size) == ("train", 5)


def test_batches_equal_the_loader_functions_on_the_same_settings(digits):
    net = Tiny()
    reader = FeatureReader(digits, max_batches=3, seed=4, **SMALL)
    got = [f["penultimate"] for f in reader.batches(net)]
    assert [f.shape for f in got] == [torch.Size([8, 6])] * 3
    want = extract_features(
        net, digits, batch_size=8, image_size=16, device="cpu", seed=4, max_batches=3
    )
    torch.testing.assert_close(torch.cat(got), want["penultimate"], rtol=0, atol=0)
    assert reader.n_batches() == 3 and not net._forward_pre_hooks and not net.fc._forward_pre_hooks


def test_every_sample_mode_reads_each_sample_once_in_order(digits):
    reader = FeatureReader(digits, max_samples=21, seed=1, max_batches=1, **SMALL)
    assert len(reader.dataset) == 21 and reader.n_batches(every_sample=True) == 3
    with reader.open(Tiny(), every_sample=True) as stream:
        rows = list(stream.labelled())
    assert [f["penultimate"].shape[0] for f, _ in rows] == [8, 8, 5]  # max_batches does not apply
    labels = torch.cat([y for _, y in rows]).numpy()
    np.testing.assert_array_equal(labels, np.asarray(reader.dataset.targets))
    again = FeatureReader(digits, max_samples=21, seed=1, **SMALL).dataset
    np.testing.assert_array_equal(np.asarray(again.targets), labels)  # the subset is seeded


def test_rate_samples_per_class_before_the_subset(digits):
    reader = FeatureReader(digits, rate="3", **SMALL)
    counts = np.bincount(np.asarray(reader.dataset.targets), minlength=10)
    assert counts.tolist() == [3] * 10


def test_fewer_samples_than_a_batch_is_one_line(digits):
    reader = FeatureReader(digits, max_samples=5, **SMALL)
    with pytest.raises(DataError, match="at least one full batch of 8 samples, found 5"):
        reader.open(Tiny())


def test_check_finite_names_the_model_site_and_batch(digits):
    net = Tiny()
    with torch.no_grad():
        net.conv.weight[0, 0, 0, 0] = float("nan")
    reader = FeatureReader(digits, max_batches=2, **SMALL)
    with (
        reader.open(net, name="model B", check_finite=True) as stream,
        pytest.raises(NonFiniteFeaturesError, match="in model B at 'penultimate', batch 1"),
    ):
        list(stream)
    assert torch.isnan(next(iter(reader.batches(net)))["penultimate"]).any()  # unchecked: passes


def test_the_stream_describes_how_a_model_was_read(digits):
    with FeatureReader(digits, interpolation="nearest", **SMALL).open(Tiny(), ["conv"]) as stream:
        about = stream.describe()
    assert about["image_size"] == 16 and about["interpolation"] == "nearest"
    assert list(about["sites"]) == ["conv"] and about["amp"] is False


def test_label_models():
    net = Tiny()
    assert [n for n, _ in label_models([net, net])] == ["Tiny", "Tiny #2"]
    assert [n for n, _ in label_models({"a": net})] == ["a"]
    assert [n for n, _ in label_models("digits-cnn")] == ["digits-cnn"]
    with pytest.raises(ConfigError, match="one label per model"):
        label_models([net], ["a", "b"])
    with pytest.raises(ConfigError, match="at least one model"):
        label_models([])
