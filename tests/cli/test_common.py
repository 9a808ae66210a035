"""The console script's process: long-lived objects frozen out of garbage collection."""

from __future__ import annotations

import gc
import subprocess
import sys

import pytest
from spectral_probe_cli import _common


@pytest.fixture
def owned_process():
    """This test's process as the console script's own; restored afterwards."""
    _common.own_process()
    try:
        yield
    finally:
        _common._Process.owned = False
        gc.unfreeze()


def test_long_lived_objects_are_frozen_and_collection_restored(owned_process) -> None:
    frozen = gc.get_freeze_count()
    with _common.long_lived():
        assert not gc.isenabled()  # no collections while the heap is built
        kept = [[i] for i in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= frozen + len(kept)


def test_a_disabled_collector_stays_disabled(owned_process) -> None:
    gc.disable()
    try:
        with _common.long_lived():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_embedded_the_heap_is_left_alone() -> None:
    """In a process the CLI does not own (tests, a notebook) nothing is frozen."""
    assert not _common._Process.owned
    frozen = gc.get_freeze_count()
    with _common.long_lived():
        assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_the_console_script_owns_its_process() -> None:
    code = (
        "import sys\n"
        "from spectral_probe_cli import _common, main\n"
        "sys.argv = ['spectral-probe', '--version']\n"
        "try:\n    main.run()\nexcept SystemExit:\n    pass\n"
        "print(_common._Process.owned)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120
    )
    assert proc.stdout.strip().splitlines()[-1] == "True"
