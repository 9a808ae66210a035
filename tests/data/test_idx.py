"""The IDX reader against hand-written bytes."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from spectral_probe.data import read_idx
from spectral_probe.errors import DataError

# A 2-image, 2x3 uint8 file written out byte by byte: magic 0x00000803, dims 2, 2, 3.
IMAGES = bytes(
    [
        *[0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3],
        *[0, 1, 2, 3, 4, 5],
        *[250, 251, 252, 253, 254, 255],
    ]
)
LABELS = bytes([0, 0, 0x08, 1, 0, 0, 0, 4, 9, 0, 0, 3])


def test_reads_hand_written_images_and_labels(tmp_path: Path) -> None:
    (tmp_path / "img").write_bytes(IMAGES)
    (tmp_path / "lab").write_bytes(LABELS)
    images = read_idx(tmp_path / "img")
    assert images.dtype == np.uint8 and images.shape == (2, 2, 3)
    assert images[0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert images[1, 1, 2] == 255
    assert read_idx(tmp_path / "lab").tolist() == [9, 0, 0, 3]


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    (tmp_path / "img.gz").write_bytes(gzip.compress(IMAGES))
    (tmp_path / "plain_named").write_bytes(gzip.compress(IMAGES))
    assert np.array_equal(read_idx(tmp_path / "img.gz"), read_idx(tmp_path / "plain_named"))


def test_big_endian_wider_types(tmp_path: Path) -> None:
    # int32 (0x0C), 1-d, 2 values: 1 and -2 in big-endian two's complement
    raw = bytes([0, 0, 0x0C, 1, 0, 0, 0, 2, 0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFE])
    (tmp_path / "ints").write_bytes(raw)
    out = read_idx(tmp_path / "ints")
    assert out.tolist() == [1, -2] and out.dtype == np.dtype("int32")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x01\x02\x08\x01", r"expected an IDX header 0000<type><ndim> in .*, found 0x01020801"),
        (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), r"found 0x00000701"),
        (bytes([0, 0, 0x08, 3, 0, 0, 0, 2]), r"expected 16 header bytes in .*, found 8"),
        (IMAGES[:-1], r"expected 12 data bytes for shape \(2, 2, 3\) in .*, found 11"),
        (IMAGES + b"\x00", r"expected 12 data bytes .* found 13"),
    ],
)
def test_bad_files(tmp_path: Path, raw: bytes, message: str) -> None:
    (tmp_path / "bad").write_bytes(raw)
    with pytest.raises(DataError, match=message):
        read_idx(tmp_path / "bad")


def test_missing_and_truncated_gzip(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected an IDX file at .*nope, found nothing"):
        read_idx(tmp_path / "nope")
    (tmp_path / "cut.gz").write_bytes(gzip.compress(IMAGES)[:-6])
    with pytest.raises(DataError, match="expected a complete gzip file"):
        read_idx(tmp_path / "cut.gz")
