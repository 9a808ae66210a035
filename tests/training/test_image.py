"""The image task's resizing filter: the model's own by default, or the task option."""

from __future__ import annotations

import pytest

from spectral_probe.errors import ConfigError
from spectral_probe.models import Preprocessing
from spectral_probe.training.image import ImageClassificationTask, _interpolation

from .conftest import tiny_config


def test_model_filter_is_the_default_and_bilinear_when_unstated():
    assert _interpolation("model", Preprocessing(interpolation="bicubic"), "m") == "bicubic"
    assert _interpolation("model", Preprocessing(interpolation=""), "m") == "bilinear"
    assert _interpolation("Bicubic", Preprocessing(interpolation="bilinear"), "m") == "bicubic"
    with pytest.raises(
        ConfigError, match=r"found 'lanczos' in the preprocessing of m: pass --task-option"
    ):
        _interpolation("model", Preprocessing(interpolation="lanczos"), "m")


@pytest.mark.parametrize(
    ("option", "expected"), [(None, "bilinear"), ("bicubic", "bicubic"), ("nearest", "nearest")]
)
def test_setup_resizes_with_the_chosen_filter_and_records_it(option, expected):
    options = {} if option is None else {"interpolation": option}
    setup = ImageClassificationTask().setup(tiny_config(task_options=options))
    assert setup.preprocessing.interpolation == expected  # what the checkpoint will say
    assert setup.info["interpolation"] == expected
    assert (
        setup.train.base.transform.interpolation == expected
    )  # digits: in-memory tensor transforms
    assert setup.evals["test"].transform.interpolation == expected


def test_unknown_filter_is_one_line():
    with pytest.raises(
        ConfigError,
        match=r"^expected an interpolation in bilinear, bicubic, nearest, found 'area' \(or 'model'\)",
    ):
        ImageClassificationTask().setup(tiny_config(task_options={"interpolation": "area"}))
