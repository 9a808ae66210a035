"""spectral_probe._checks: the one family of value checks and the one feature-matrix check."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectral_probe._checks import as_matrix, check_choice, check_float, check_int
from spectral_probe.errors import ConfigError, DataError, MatrixError


def test_check_int_returns_the_value_and_names_the_setting():
    assert check_int("bss.k", 3) == 3 and check_int("n", 0, 0) == 0
    for bad in (True, 2.0, "2", 0):
        with pytest.raises(ConfigError, match=r"expected bss\.k to be an integer >= 1, found "):
            check_int("bss.k", bad)


def test_check_float_minimum_strict_and_finite():
    assert check_float("lr", 1) == 1.0 and isinstance(check_float("lr", 1), float)
    assert check_float("gamma", 0.0) == 0.0
    with pytest.raises(ConfigError, match=r"expected t > 0, found 0"):
        check_float("t", 0, strict=True)
    with pytest.raises(ConfigError, match=r"expected eta >= 0.5, found 0.25"):
        check_float("eta", 0.25, 0.5)
    for bad in (math.nan, math.inf, True, "1"):
        with pytest.raises(ConfigError, match="to be a finite number"):
            check_float("x", bad)


def test_check_choice():
    assert check_choice("mode", "a", ("a", "b")) == "a"
    with pytest.raises(ConfigError, match="expected mode to be one of a, b, found 'c'"):
        check_choice("mode", "c", ("a", "b"))


def test_as_matrix_converts_arrays_lists_and_integer_dtypes():
    ref = np.arange(6).reshape(3, 2)
    for values in (ref, ref.tolist(), torch.as_tensor(ref)):
        t = as_matrix(values, dtype=torch.float64)
        assert t.dtype == torch.float64 and t.tolist() == ref.astype(float).tolist()


@pytest.mark.parametrize(
    ("values", "kwargs", "message"),
    [
        (np.zeros(3), {}, r"features of shape \(N, d\), found shape \(3,\)"),
        (np.zeros((2, 2, 2)), {}, r"shape \(N, d\), found shape \(2, 2, 2\)"),
        (np.array([[1, 2]]), {}, "floating-point features, found dtype torch.int64"),
        (np.ones((2, 2), dtype=bool), {"dtype": torch.float64}, "real-valued features"),
        (np.array([[1.0, math.nan]]), {"dtype": torch.float64}, "finite features"),
        ({"a": 1}, {}, "features as a tensor or array, found dict"),
    ],
)
def test_as_matrix_refuses_in_one_line(values, kwargs, message):
    with pytest.raises(MatrixError, match=message) as info:
        as_matrix(values, **kwargs)
    assert isinstance(info.value, DataError) and isinstance(info.value, ConfigError)


def test_as_matrix_training_path_flattens_and_keeps_the_graph():
    x = torch.randn(4, 3, 2, 2, requires_grad=True)
    f = as_matrix(x, "bss features", finite=False, flatten=True, detach=False)
    assert f.shape == (4, 12) and f.requires_grad and f.dtype == x.dtype
    f.sum().backward()
    assert x.grad is not None
    assert not as_matrix(x.reshape(4, -1), dtype=torch.float64).requires_grad  # analyses detach
    nan = torch.full((2, 2), math.nan)
    assert as_matrix(nan, finite=False).isnan().all()  # the training path checks no values
