"""Readers of weight files: one tensor at a time, memory-mapped, never a model.

* :class:`SafetensorsFile`: a ``.safetensors`` file through ``safe_open`` (the header is read
  at open; each tensor is read from a memory map opened for it alone, unmapped when the tensor
  is freed). A truncated file is refused
  at open: its header promises more bytes than the file holds.
* :class:`TorchFile`: a ``.pt``/``.pth``/``.bin``/``.ckpt`` file through
  ``torch.load(weights_only=True, mmap=True)``: no code runs; each tensor is then read from
  its own bytes when asked for. A Lightning checkpoint's ``state_dict`` (or ``model_state_dict``, ``model``...) is
  unwrapped; non-tensor entries that would need unpickling of code are refused with a hint.
  Tensors that share storage (tied embeddings saved by ``torch.save``) are kept once, noted.
* :class:`ShardedSource`: shards named by a ``*.index.json`` ``weight_map``
  (transformers' sharded ``model.safetensors.index.json`` / ``pytorch_model.bin.index.json``).
* :class:`StateDictSource`: an in-memory mapping (a module's ``state_dict``), for the API.

Every reader exposes canonical names (:func:`~spectral_probe.sources.canonical_name`) in depth
order (``.safetensors`` stores names sorted alphabetically; a ``torch.save``'d state dict keeps
module order, which is kept).
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, UnsafeCheckpointError
from ._base import BaseSource

__all__ = [
    "SafetensorsFile",
    "TorchFile",
    "ShardedSource",
    "StateDictSource",
    "SHARD_NAME",
    "WEIGHT_SUFFIXES",
]

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
#: transformers' shard file names: ``model-00001-of-00004.safetensors``
SHARD_NAME = re.compile(r"-(\d+)-of-(\d+)\.(safetensors|bin)$")
_ST_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net")


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise CheckpointError(f"no such checkpoint file: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty")


class SafetensorsFile(BaseSource):
    """One ``.safetensors`` file, read lazily through ``safetensors.safe_open``.

    The header (names, shapes, dtypes) is read once at open. Every :meth:`load` maps the file
    afresh (``safe_open`` costs well under a millisecond) and returns a tensor backed by that
    map: the pages it touches are unmapped when the tensor is freed, so resident memory does not
    grow with what has been read (a map kept open for the whole run would keep every page read
    resident, the whole model by the end).
    """

    def __init__(self, path: str | Path, label: str | None = None, *, index: bool = True) -> None:
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        super().__init__(label or str(path))
        _check_file(path)
        self.path = path
        try:
            with safe_open(str(path), framework="pt") as handle:
                names = list(handle.keys())
                self._header = {
                    n: (tuple(handle.get_slice(n).get_shape()), handle.get_slice(n).get_dtype())
                    for n in names
                }
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                f"cannot read {path}: not a complete safetensors file ({str(exc).splitlines()[0]})"
            ) from None
        self.stored_names = set(names)
        if index:
            self._index(names)

    def _load_stored(self, stored: str) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(self.path), framework="pt") as handle:
            return handle.get_tensor(stored)  # type: ignore[no-any-return]

    def _shape_stored(self, stored: str) -> tuple[int, ...]:
        return self._header[stored][0]

    def _dtype_stored(self, stored: str) -> torch.dtype:
        code = self._header[stored][1]
        if code not in _ST_DTYPES:
            raise CheckpointError(f"expected a known safetensors dtype for {stored}, found {code}")
        return _ST_DTYPES[code]


def _refuse_pickle(path: Path, exc: Exception) -> UnsafeCheckpointError:
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    detail = f" such as {found.group(1)}" if found else ""
    key = "['state_dict']" if path.suffix == ".ckpt" else ""
    return UnsafeCheckpointError(
        f"refusing to load {path}: it holds pickled Python objects{detail}, and unpickling can "
        "run arbitrary code; if you trust it, load it once with weights_only=False and re-save "
        f"its tensors (the checkpoint{key or '.state_dict()'}) with "
        "safetensors.torch.save_file(..., 'model.safetensors')"
    )


def torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)``, memory-mapped where the file allows (zip format).

    Raises :class:`UnsafeCheckpointError` for a pickle that needs code, and
    :class:`CheckpointError` for a truncated or foreign file.
    """
    _check_file(path)
    mmap = zipfile.is_zipfile(path)  # the legacy (pre-1.6) format cannot be memory-mapped
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        raise _refuse_pickle(path, exc) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot read {path}: truncated or not a torch checkpoint "
            f"({str(exc).splitlines()[0][:160]})"
        ) from None


def _is_state(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def unwrap_state(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The name -> tensor mapping inside a loaded checkpoint (Lightning, trainer dicts...)."""
    for _ in range(3):
        if _is_state(obj):
            break
        if isinstance(obj, Mapping):
            inner = next(
                (obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], Mapping)), None
            )
            if inner is not None:
                obj = inner
                continue
        break
    if not _is_state(obj):
        raise CheckpointError(
            f"expected a state dict (name -> tensor) in {path}, found {type(obj).__name__}"
            + (
                f" with keys {', '.join(map(str, list(obj)[:5]))}"
                if isinstance(obj, Mapping)
                else ""
            )
        )
    return dict(obj)


class StateDictSource(BaseSource):
    """An in-memory ``name -> tensor`` mapping; tensors sharing storage are kept once.

    Args:
        state: the mapping (kept by reference; nothing is copied).
        label: what to call it in results.
        keep_order: keep the mapping's order (module order for a ``state_dict``) instead of
            depth order by name.
    """

    def __init__(
        self,
        state: Mapping[str, torch.Tensor],
        label: str = "state dict",
        *,
        keep_order: bool = True,
    ) -> None:
        super().__init__(label)
        self._state: dict[str, torch.Tensor] = {}
        self._aliases: dict[str, str] = {}
        self.stored_names = set(state)
        seen: dict[tuple[Any, ...], str] = {}
        for name, t in state.items():
            key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride())
            if t.numel() and t.ndim >= 2 and key in seen:
                self.notes.append(
                    f"{name} shares its storage with {seen[key]} (tied): analysed once"
                )
                self._aliases[name] = seen[key]
                continue
            seen[key] = name
            self._state[name] = t
        self._index(self._state, keep_order=keep_order)

    def _load_stored(self, stored: str) -> torch.Tensor:
        return self._state[self._aliases.get(stored, stored)].detach()


class TorchFile(StateDictSource):
    """A ``torch.save``'d state dict or trainer checkpoint, read with ``weights_only=True``.

    Names, shapes, dtypes and tied tensors are taken from one memory-mapped load, which also
    gives where each tensor's storage lies in the file (a zip whose storages are stored
    uncompressed, one entry each). Then the mapping is dropped and every :meth:`load` reads just
    that storage's bytes into a fresh tensor: nothing of the file stays resident once the tensor
    is freed, and nothing is unpickled again. Where the layout is not the one expected (a
    compressed entry, a big-endian file), each :meth:`load` maps the file again and unpickles it
    (slower: the whole pickle per tensor). A legacy (pre-zip) file is kept in memory.
    """

    def __init__(self, path: str | Path, label: str | None = None) -> None:
        path = Path(path)
        self.path = path
        super().__init__(unwrap_state(torch_load(path), path), label or str(path))
        self._meta = {n: (tuple(t.shape), t.dtype) for n, t in self._state.items()}
        self._reopen = zipfile.is_zipfile(path)
        self._where: dict[str, tuple[int, int, tuple[int, ...], tuple[int, ...], int]] = {}
        if self._reopen:
            self._where = _storage_table(path, self._state)
            self._state = {}

    def _kept(self, stored: str) -> str:
        return self._aliases.get(stored, stored)

    def _load_stored(self, stored: str) -> torch.Tensor:
        if not self._reopen:
            return super()._load_stored(stored)
        name = self._kept(stored)
        if name in self._where:
            start, nbytes, shape, stride, offset = self._where[name]
            dtype = self._meta[name][1]
            if not nbytes:
                return torch.empty(shape, dtype=dtype)
            buffer = bytearray(nbytes)
            with open(self.path, "rb") as fh:
                fh.seek(start)
                if fh.readinto(buffer) != nbytes:
                    raise CheckpointError(f"cannot read {name} from {self.path}: file truncated")
            return (
                torch.frombuffer(buffer, dtype=torch.uint8)
                .view(dtype)
                .as_strided(shape, stride, offset)
            )
        return unwrap_state(torch_load(self.path), self.path)[name].detach()

    def _shape_stored(self, stored: str) -> tuple[int, ...]:
        return self._meta[self._kept(stored)][0]

    def _dtype_stored(self, stored: str) -> torch.dtype:
        return self._meta[self._kept(stored)][1]


def _storage_table(
    path: Path, state: Mapping[str, torch.Tensor]
) -> dict[str, tuple[int, int, tuple[int, ...], tuple[int, ...], int]]:
    """Per tensor of a memory-mapped load: ``(file position of its storage, storage bytes,
    shape, stride, storage offset)``; empty when the file is not laid out as expected.

    A memory-mapped ``torch.load`` maps the whole file once and points every storage into that
    map, so a storage's address minus the map's start is its position in the file. The start is
    found by matching the lowest storage address to the first data entry of the zip, and every
    storage must then land on the start of a data entry (else the table is not trusted).
    """
    starts: set[int] = set()
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            folder, _, tail = info.filename.rpartition("/")
            if tail == "byteorder" and zf.read(info).strip() != b"little":
                return {}
            if not folder.endswith("/data") or not tail.isdigit():
                continue
            if info.compress_type != zipfile.ZIP_STORED:
                return {}
            fh.seek(info.header_offset + 26)
            name_len, extra_len = struct.unpack("<HH", fh.read(4))
            starts.add(info.header_offset + 30 + name_len + extra_len)
    stored = [t for t in state.values() if t.untyped_storage().nbytes()]
    if not starts or not stored:
        return {}
    base = min(t.untyped_storage().data_ptr() for t in stored) - min(starts)
    table = {}
    for name, t in state.items():
        storage = t.untyped_storage()
        start = storage.data_ptr() - base if storage.nbytes() else 0
        if storage.nbytes() and start not in starts:
            return {}
        where = (
            start,
            storage.nbytes(),
            tuple(t.shape),
            tuple(t.stride()),
            int(t.storage_offset()),
        )
        table[name] = where
    return table


class ShardedSource(BaseSource):
    """Shards named by a transformers index (``weight_map``: tensor name -> shard file).

    Every shard the index names must exist and hold the tensors the index says it holds.
    """

    def __init__(self, index: str | Path, label: str | None = None) -> None:
        index = Path(index)
        super().__init__(label or str(index.parent))
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(
                f"expected a shard index with a weight_map in {index}, found {type(exc).__name__}: {exc}"
            ) from None
        if not isinstance(weight_map, dict) or not weight_map:
            raise CheckpointError(f"expected a non-empty weight_map in {index}, found none")
        self._shards: dict[str, BaseSource] = {}
        for shard in dict.fromkeys(weight_map.values()):
            file = index.parent / shard
            if not file.is_file():
                raise CheckpointError(
                    f"{index.name} names shard {shard}, which is missing from {index.parent}"
                )
            self._shards[shard] = (
                SafetensorsFile(file, index=False)
                if file.suffix == ".safetensors"
                else TorchFile(file)
            )
        self._where: dict[str, BaseSource] = {}
        for name, shard in weight_map.items():
            reader = self._shards[shard]
            if name not in reader.stored_names:
                raise CheckpointError(
                    f"{index.name} places {name} in {shard}, which does not hold it"
                )
            self._where[name] = reader
        self._index(weight_map)

    def _load_stored(self, stored: str) -> torch.Tensor:
        return self._where[stored]._load_stored(stored)

    def _shape_stored(self, stored: str) -> tuple[int, ...]:
        return self._where[stored]._shape_stored(stored)

    def _dtype_stored(self, stored: str) -> torch.dtype:
        return self._where[stored]._dtype_stored(stored)

    def close(self) -> None:
        """Close every shard."""
        for reader in self._shards.values():
            reader.close()


def check_not_a_shard(path: Path) -> None:
    """Refuse one shard of a sharded model given where the whole model is meant."""
    match = SHARD_NAME.search(path.name)
    if match is None or int(match.group(2)) <= 1:
        return
    indexes = sorted(path.parent.glob("*.index.json"))
    where = f" ({indexes[0].name} names the rest)" if indexes else ""
    raise CheckpointError(
        f"{path.name} is shard {int(match.group(1))} of {int(match.group(2))} of a sharded "
        f"model{where}; pass the directory {path.parent} to read every shard"
    )


def open_file(path: Path, label: str | None = None) -> BaseSource:
    """A reader for one weight file, by suffix."""
    if path.suffix not in WEIGHT_SUFFIXES:
        raise CheckpointError(
            f"expected a weight file ending in {', '.join(WEIGHT_SUFFIXES)}, found {path.name}"
        )
    check_not_a_shard(path)
    if path.suffix == ".safetensors":
        return SafetensorsFile(path, label)
    return TorchFile(path, label)
