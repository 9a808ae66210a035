r"""LASER: a copy of a model whose chosen matrices are replaced by low-rank approximations.

Sharma et al. (ICLR 2024, "The Truth is in There: Improving Reasoning in Language Models with
Layer-Selective Rank Reduction") replace chosen weight matrices :math:`W` (a layer, a matrix
type) by their best rank-:math:`k` approximation :math:`W_k = U_k \operatorname{diag}(s_k)
V_k^\top` (Eckart-Young), with :math:`k = \lceil \text{keep} \cdot \min(m, n) \rceil`. It is
the truncated-SVD idea of the paper this toolkit reproduces, applied after training.

:func:`truncate_model` reads a transformers safetensors directory one shard at a time and
writes a new directory that transformers loads as it loaded the input: the same shard files
(names, tensors, order, header metadata), the ``model.safetensors.index.json`` with its
``total_size`` recomputed, and every other top-level file copied (``config.json``, the
tokenizer's files, ``generation_config.json``). Tensors not named keep their bytes; the named
ones are computed in float64 and stored in their own dtype. A ``laser.json`` records what was
replaced. The directory is built beside ``out`` and renamed into place: on any failure nothing
is left at ``out``.

Writing a model directory is I/O, but the truncation is a result computed from a model, which
is what this layer (``analysis``) holds; the decomposition itself is
:func:`spectral_probe.spectral.svd`.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._io import atomic_write_text, write_json
from ..errors import CheckpointError, ConfigError, OutputError
from ..spectral.svd import svd

__all__ = ["LaserResult", "low_rank", "kept_rank", "check_keep", "truncate_model", "INDEX_NAME"]

Progress = Callable[[int, int, str], None]
INDEX_NAME = "model.safetensors.index.json"
_SINGLE = "model.safetensors"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt")


def kept_rank(keep: float, rows: int, cols: int) -> int:
    r""":math:`\lceil \text{keep} \cdot \min(m, n) \rceil`, at least 1.

    A product within 1e-9 of an integer counts as that integer (``0.1 * 30`` is 3, not 4).

    Example:
        >>> kept_rank(0.1, 30, 64), kept_rank(0.01, 30, 64), kept_rank(1.0, 30, 64)
        (3, 1, 30)
    """
    check_keep(keep)
    return max(1, math.ceil(round(keep * min(rows, cols), 9)))


def check_keep(keep: float) -> None:
    """Raise a one-line :class:`ConfigError` unless ``keep`` is in (0, 1]."""
    if not (isinstance(keep, int | float) and 0.0 < keep <= 1.0):
        raise ConfigError(f"expected --keep in (0, 1], found {keep}")


def low_rank(w: Tensor, k: int) -> Tensor:
    """Best rank-``k`` approximation of the matrix ``w`` in float64 (LAPACK's SVD).

    Example:
        >>> low_rank(torch.diag(torch.tensor([3.0, 2.0, 1.0])), 2).diagonal().tolist()
        [3.0, 2.0, 0.0]
    """
    if w.ndim != 2:
        raise ValueError(f"expected a 2-D matrix, found shape {tuple(w.shape)}")
    if not 1 <= k <= min(w.shape):
        raise ValueError(f"expected 1 <= k <= {min(w.shape)}, found k = {k}")
    parts = svd(w, vectors="both", method="svd")
    if parts.U is None or parts.V is None:  # pragma: no cover (vectors="both" returns both)
        raise RuntimeError("svd returned no singular vectors")
    return (parts.U[:, :k] * parts.S[:k]) @ parts.V[:, :k].mT


@dataclass(frozen=True)
class LaserResult:
    """What :func:`truncate_model` wrote.

    Attributes:
        out: the new model directory.
        replaced: ``{tensor name: {"shape": [m, n], "rank": k, "full_rank": min(m, n)}}``.
        meta: source directory, pattern, keep fraction.
    """

    out: Path
    replaced: dict[str, dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: meta and the replaced tensors."""
        return {"meta": self.meta, "replaced": self.replaced}


def _shards(model_dir: Path) -> tuple[list[str], dict[str, Any] | None]:
    """The shard file names (in index order) and the index, or the single file and ``None``."""
    index_file = model_dir / INDEX_NAME
    if index_file.is_file():
        try:
            index = json.loads(index_file.read_text())
            weight_map = index["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"cannot read {index_file}: {exc}") from None
        shards = list(dict.fromkeys(weight_map.values()))
        missing = [s for s in shards if not (model_dir / s).is_file()]
        if missing:
            raise CheckpointError(
                f"expected the shards of {index_file}, found {missing[0]} missing"
            )
        return shards, index
    if (model_dir / _SINGLE).is_file():
        return [_SINGLE], None
    raise CheckpointError(
        f"expected a transformers safetensors directory ({INDEX_NAME} or {_SINGLE}) "
        f"at {model_dir}, found neither"
    )


def _matching(model_dir: Path, shards: list[str], pattern: re.Pattern[str]) -> dict[str, str]:
    """``{tensor name: shard}`` for the 2-D floating tensors whose name ``pattern`` finds."""
    from safetensors import safe_open

    found = {}
    for shard in shards:
        with safe_open(str(model_dir / shard), framework="pt") as fh:
            for name in fh.keys():  # noqa: SIM118 (safe_open has no __iter__)
                if not pattern.search(name):
                    continue
                part = fh.get_slice(name)
                dtype = part.get_dtype()
                if len(part.get_shape()) == 2 and dtype in ("F64", "F32", "F16", "BF16"):
                    found[name] = shard
    return found


def _is_weights(name: str) -> bool:
    """Weight files and indexes are not copied: the new shards replace them."""
    return name.endswith(_WEIGHT_SUFFIXES) or name.endswith(".index.json")


def _new_dir(out: Path) -> Path:
    """A fresh folder beside ``out``; ``out`` must not exist or be an empty folder."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(f"expected --out to be a new or empty directory, found {out} in use")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
        mask = os.umask(0)
        os.umask(mask)
        tmp.chmod(0o777 & ~mask)  # mkdtemp makes 0700; the model folder gets the usual mode
        return tmp
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}") from None


def truncate_model(
    model_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    layers: str,
    keep: float,
    progress: Progress | None = None,
) -> LaserResult:
    """Write a copy of ``model_dir`` with the matrices ``layers`` names at rank ``ceil(keep r)``.

    Args:
        model_dir: a transformers directory of safetensors (single file or sharded).
        out: the new directory (must not exist, or be empty).
        layers: regular expression, ``re.search`` over stored tensor names; every matching
            2-D floating tensor is replaced.
        keep: fraction of the full rank :math:`\\min(m, n)` kept, in (0, 1].
        progress: called as ``progress(done, total, tensor)`` after each replaced matrix.

    Raises:
        ConfigError: ``keep`` outside (0, 1], an invalid regex or one that names no matrix.
        CheckpointError: not a safetensors model directory, a shard missing.
        OutputError: ``out`` in use or not writable.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    check_keep(keep)
    try:
        pattern = re.compile(layers)
    except re.error as exc:
        raise ConfigError(
            f"expected a valid regular expression for --layers, found {layers!r}: {exc}"
        ) from None
    source = Path(model_dir)
    if not source.is_dir():
        raise CheckpointError(f"expected a model directory, found no directory at {source}")
    shards, index = _shards(source)
    targets = _matching(source, shards, pattern)
    if not targets:
        raise ConfigError(
            f"expected --layers {layers!r} to name 2-D weights in {source}, found none"
        )
    out = Path(out)
    tmp = _new_dir(out)
    replaced: dict[str, dict[str, Any]] = {}
    try:
        total_size = 0
        for shard in shards:
            tensors: dict[str, Tensor] = {}
            with safe_open(str(source / shard), framework="pt") as fh:
                metadata = fh.metadata()
                for name in fh.keys():  # noqa: SIM118
                    tensor = fh.get_tensor(name)
                    if name in targets:
                        rows, cols = tensor.shape
                        k = kept_rank(keep, rows, cols)
                        tensor = low_rank(tensor.to(torch.float64), k).to(tensor.dtype)
                        replaced[name] = {
                            "shape": [rows, cols],
                            "rank": k,
                            "full_rank": min(rows, cols),
                        }
                        if progress is not None:
                            progress(len(replaced), len(targets), name)
                    tensors[name] = tensor.contiguous()
                    total_size += tensor.numel() * tensor.element_size()
            save_file(tensors, str(tmp / shard), metadata=metadata)
            del tensors
        if index is not None:
            index = dict(index)
            index["metadata"] = dict(index.get("metadata") or {}) | {"total_size": total_size}
            atomic_write_text(tmp / INDEX_NAME, json.dumps(index, indent=2, sort_keys=True) + "\n")
        for item in sorted(source.iterdir()):
            if item.is_file() and not _is_weights(item.name) and item.name != "laser.json":
                shutil.copy2(item, tmp / item.name)
        meta = {"source": str(source), "layers": layers, "keep": keep}
        result = LaserResult(out, replaced, meta)
        write_json(tmp / "laser.json", result.to_dict())
        if out.exists():
            out.rmdir()  # empty, checked by _new_dir
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result
