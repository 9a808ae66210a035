"""Score tests run on small matrices: one torch thread is fastest on a shared machine."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread: None) -> None:
    """Small float64 products and eigensolvers: no thread pool to wait on."""
