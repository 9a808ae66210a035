"""Fixtures of the regularizer tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread: None) -> None:
    """Tiny tensors run fastest single-threaded (and immune to a busy shared machine)."""
