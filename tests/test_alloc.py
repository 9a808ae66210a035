"""keep_freed_memory: freed large blocks stay in the process (glibc), and the opt-out."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from spectral_probe._alloc import keep_freed_memory

_PROBE = """
import sys
from spectral_probe._alloc import keep_freed_memory

def rss_mib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20

applied = keep_freed_memory() if sys.argv[1] == "on" else False
before = rss_mib()
block = bytearray(256 * 2**20)  # one 256 MiB malloc, touched (zero-filled)
del block
print(applied, round(rss_mib() - before))
"""


def _probe(mode: str, **env: str) -> tuple[bool, int]:
    base = {
        k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")
    }
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**base, **env},
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not os.path.exists("/proc/self/statm"),
    reason="glibc on Linux only",
)
def test_freed_block_is_kept_only_when_applied():
    applied, kept = _probe("on")
    if not applied:
        pytest.skip("not glibc: mallopt unavailable")
    assert kept >= 200  # the 256 MiB stayed in the heap for the next batch
    assert _probe("off") == (False, pytest.approx(0, abs=16))  # glibc's default: unmapped on free
    assert _probe("on", SPECTRAL_PROBE_MALLOC="default")[0] is False


def test_opt_out_changes_nothing(monkeypatch):
    monkeypatch.setenv("SPECTRAL_PROBE_MALLOC", "off")
    assert keep_freed_memory() is False
