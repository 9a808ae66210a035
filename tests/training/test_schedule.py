"""Learning-rate schedules as pure functions of the iteration."""

from __future__ import annotations

import math

import pytest

from spectral_probe.errors import ConfigError
from spectral_probe.training import lr_factor


def test_step_schedule_of_the_paper():
    # the first 6000 steps at the initial rate, the remaining 3000 at a tenth of it
    f = [lr_factor("step", t, 9000, step=6000, gamma=0.1) for t in range(9000)]
    assert f[:6000] == [1.0] * 6000
    assert f[6000:] == [pytest.approx(0.1)] * 3000


def test_step_boundaries():
    assert [lr_factor("step", t, 100, step=10, gamma=0.5) for t in (0, 9, 10, 19, 20)] == [
        1,
        1,
        0.5,
        0.5,
        0.25,
    ]


def test_warmup_then_linear_decay():
    f = [lr_factor("linear", t, 10, warmup=4) for t in range(10)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == 1.0 and f[-1] == pytest.approx(1 / 6)


def test_cosine_and_constant():
    assert lr_factor("cosine", 0, 100) == 1.0
    assert lr_factor("cosine", 50, 100) == pytest.approx(0.5)
    assert lr_factor("cosine", 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("constant", 77, 100) == 1.0
    assert math.isclose(lr_factor("cosine", 25, 100), 0.5 * (1 + math.cos(math.pi / 4)))


def test_unknown_schedule():
    with pytest.raises(ConfigError, match="expected a schedule"):
        lr_factor("poly", 0, 10)
