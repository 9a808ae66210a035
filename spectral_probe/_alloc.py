"""Keep large CPU buffers in the process between batches (glibc's malloc).

PyTorch's CPU tensors come from ``malloc``. glibc serves every block above its mmap threshold
(at most 32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, so each large activation of
a CNN at 224 px (one 48 x 96 x 112 x 112 float32 map is 231 MiB) is page-faulted and zeroed
by the kernel again in every batch. Measured on the 2-core dev box, extracting
EfficientNet-Lite0 features of 576 Fashion-MNIST images at 224 px took 33.9 s, 27 s of it in
the kernel; with the settings below 19.3 s (1.2 s in the kernel), at the same peak memory.

:func:`keep_freed_memory` sets ``M_MMAP_MAX = 0`` (large blocks come from the heap and are
reused) and ``M_TRIM_THRESHOLD`` to 2 GiB (freed memory is returned to the system only above
that). The ``spectral-probe`` command does it at start, and so does each sweep job
(:func:`~spectral_probe.training.sweep.run_cell`); otherwise the Python API leaves the
process's allocator alone unless you call it. ``SPECTRAL_PROBE_MALLOC=default`` turns it off.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_TRIM_BYTES = 2**31 - 1  # mallopt takes a C int


def keep_freed_memory() -> bool:
    """Make glibc keep freed large blocks for reuse instead of unmapping them.

    Returns:
        True when applied; False on other C libraries or platforms (nothing changes), or when
        ``SPECTRAL_PROBE_MALLOC`` is ``default``, ``off`` or ``0``.
    """
    if os.environ.get("SPECTRAL_PROBE_MALLOC", "").strip().lower() in ("default", "off", "0"):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_BYTES))
