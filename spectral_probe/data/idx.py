"""Reader for the IDX binary format of (Fashion-)MNIST, gzip-compressed or not.

Layout (big-endian): two zero bytes, a type code, the number of dimensions ``d``, then
``d`` unsigned 32-bit sizes, then the values in row-major order. Type codes:
``0x08`` uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
``0x0E`` float64. Images are ``0x00000803`` (uint8, 3-d), labels ``0x00000801``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["read_idx", "IDX_DTYPES"]

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError(f"expected an IDX file at {path}, found nothing") from None
    if raw[:2] == _GZIP_MAGIC:  # decide by content, not by the file name
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"expected a complete gzip file at {path}, found: {exc}") from None
    return raw


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a native-endian ``ndarray``.

    Raises:
        DataError: a missing file, a bad header, or a data size that does not match the
            header's dimensions.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
        >>> _ = p.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]))
        >>> read_idx(p).tolist()
        [7, 0, 9]
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        head = raw[:4].hex()
        raise DataError(f"expected an IDX header 0000<type><ndim> in {path}, found 0x{head}")
    dtype, ndim = IDX_DTYPES[raw[2]], raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"expected {header_len} header bytes in {path}, found {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header_len
    if found != expected:
        raise DataError(
            f"expected {expected} data bytes for shape {shape} in {path}, found {found}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="), copy=True)
