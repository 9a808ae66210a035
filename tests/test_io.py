"""spectral_probe._io: atomic writes, strict JSON, staged output folders."""

from __future__ import annotations

import json
import math
import os
import stat

import numpy as np
import pytest

from spectral_probe._io import (
    atomic_write_text,
    check_writable_dir,
    staged_dir,
    to_jsonable,
    write_json,
)
from spectral_probe.errors import OutputError


def test_atomic_write_has_usual_permissions_and_no_leftovers(tmp_path):
    path = atomic_write_text(tmp_path / "a" / "b.txt", "hello")
    assert path.read_text() == "hello"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    assert [p.name for p in path.parent.iterdir()] == ["b.txt"]


def test_strict_json_turns_nan_into_null(tmp_path):
    path = write_json(
        tmp_path / "x.json",
        {"a": math.nan, "b": np.float32(1.5), "c": np.arange(3), "d": (1, math.inf)},
    )
    assert json.loads(path.read_text()) == {"a": None, "b": 1.5, "c": [0, 1, 2], "d": [1, None]}
    assert to_jsonable({1: [np.int64(2)]}) == {"1": [2]}


def test_staged_dir_moves_everything_or_nothing(tmp_path):
    out = tmp_path / "out"
    with staged_dir(out) as tmp:
        (tmp / "sub").mkdir()
        (tmp / "sub" / "f.txt").write_text("x")
        assert not out.exists()
    assert (out / "sub" / "f.txt").read_text() == "x"
    with pytest.raises(RuntimeError), staged_dir(tmp_path / "never") as tmp:  # noqa: PT012 - raised inside
        (tmp / "half.txt").write_text("x")
        raise RuntimeError("boom")
    assert not (tmp_path / "never").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_check_writable_dir(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="found a file"):
        check_writable_dir(tmp_path / "file")
    with pytest.raises(OutputError, match="is a file"):
        check_writable_dir(tmp_path / "file" / "below")
    assert check_writable_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
