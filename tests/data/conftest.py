"""Fixtures for the data tests: one small generated copy of every layout per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from _fixtures.datasets import (
    make_cub200,
    make_fashion_mnist,
    make_fgvc_aircraft,
    make_glue_task,
    make_imagefolder,
    make_mit_indoor67,
    make_mnist,
    make_oxford_pets,
    make_stanford_cars,
    make_stanford_dogs,
)

N_CLASSES, PER_CLASS, TEST_PER_CLASS = 3, 4, 2

# Registry name -> generator of a root for its spec (None: the dataset takes no root).
MAKERS: dict[str, Callable[[Path], Path] | None] = {
    "imagefolder": lambda r: make_imagefolder(
        r, N_CLASSES, PER_CLASS, test_per_class=TEST_PER_CLASS
    ),
    "cub200": lambda r: make_cub200(r, N_CLASSES, PER_CLASS, test_per_class=TEST_PER_CLASS),
    "stanford-dogs": lambda r: make_stanford_dogs(
        r, N_CLASSES, PER_CLASS, test_per_class=TEST_PER_CLASS
    ),
    "stanford-cars": lambda r: make_stanford_cars(
        r, N_CLASSES, PER_CLASS, test_per_class=TEST_PER_CLASS
    ),
    "oxford-pets": lambda r: make_oxford_pets(
        r, N_CLASSES, PER_CLASS, test_per_class=TEST_PER_CLASS
    ),
    "fgvc-aircraft": lambda r: make_fgvc_aircraft(
        r, N_CLASSES, PER_CLASS, test_per_class=TEST_PER_CLASS
    ),
    "mit-indoor67": lambda r: make_mit_indoor67(
        r, N_CLASSES, PER_CLASS, test_per_class=TEST_PER_CLASS
    ),
    "fashion-mnist": lambda r: make_fashion_mnist(r, n_train=30, n_test=20),
    "mnist": lambda r: make_mnist(r, n_train=30, n_test=20, layout="torchvision"),
    "digits": None,
    "glue-sst2": lambda r: make_glue_task(r, "sst2", n=8),
    "glue-mrpc": lambda r: make_glue_task(r, "mrpc", n=8),
    "glue-qnli": lambda r: make_glue_task(r, "qnli", n=8),
    "glue-mnli": lambda r: make_glue_task(r, "mnli", n=9),
}

FILE_LAYOUTS = [
    "imagefolder",
    "cub200",
    "stanford-dogs",
    "stanford-cars",
    "oxford-pets",
    "fgvc-aircraft",
    "mit-indoor67",
]


@pytest.fixture(scope="session")
def layout_specs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Registry name -> a data spec string for a generated copy of that layout (read-only)."""
    specs = {}
    for name, maker in MAKERS.items():
        specs[name] = name if maker is None else f"{name}:{maker(tmp_path_factory.mktemp(name))}"
    return specs
