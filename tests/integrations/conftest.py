"""Fixtures of the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models on CPU: one torch thread is fastest (and safe on a shared machine)."""
