"""Shared pytest configuration."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n N: N workers already fill the cores; one thread each (and in their child
    # processes) avoids oversubscription, where every small parallel region waits.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a module, restored after it.

    Small models and tensors run fastest single-threaded, and on a shared 2-core machine every
    parallel region of a small op waits for a busy core (a 12-image EfficientNet forward took
    2.0 s instead of 0.06 s). Results do not change. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` or from a directory's
    ``conftest.py``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` cleanly when CUDA is absent."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; none on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
