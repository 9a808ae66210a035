"""PEFT LoRA adapters: the adapter's factors, and a base model with the adapter merged in.

An adapter directory holds ``adapter_config.json`` and ``adapter_model.safetensors`` (or
``adapter_model.bin``), as peft's ``save_pretrained`` writes them. For every targeted module the
update of its weight (peft ``tuners/lora/layer.py``, ``get_delta_weight``) is

.. math::

    \\Delta W = s \\, B A, \\qquad s = \\frac{\\alpha}{r} \\text{ or } \\frac{\\alpha}{\\sqrt r}
    \\text{ (rsLoRA)},

with ``B`` of shape ``(out, r)``, ``A`` of shape ``(r, in)``; ``r`` is read from the factors
(so ``rank_pattern`` needs no parsing) and ``alpha`` from ``alpha_pattern`` where a pattern
matches the module name (peft's ``get_pattern_key``: ``(.*\\.)?(PATTERN)$``), else
``lora_alpha``. Stored orientation differs by layer type:

* ``nn.Linear``: ``W (out, in) += s B A``;
* GPT-2 ``Conv1D`` with ``fan_in_fan_out``: ``W (in, out) += s (B A)^T``;
* ``nn.Embedding`` (``lora_embedding_A (r, num)``, ``lora_embedding_B (dim, r)``):
  ``W (num, dim) += s (B A)^T``;
* ``nn.Conv2d``: ``A`` a ``(r, in, kh, kw)`` kernel and ``B`` a ``(out, r, 1, 1)`` one:
  ``W += s reshape(B_{flat} A_{flat})``.

``modules_to_save`` tensors, and base layers peft saved beside the factors
(``save_embedding_layers``: ``...embed_tokens.base_layer.weight``), replace the base's. DoRA (``use_dora``) and adapters other than
LoRA are refused in one line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError
from ._base import BaseSource
from ._names import canonical_name
from .files import SafetensorsFile, TorchFile

__all__ = ["LoraFactors", "AdapterSource", "MergedSource", "is_adapter_dir", "merge_adapter"]

_PART = re.compile(
    r"^(?P<module>.+?)\.(?P<part>lora_A|lora_B|lora_embedding_A|lora_embedding_B|"
    r"lora_magnitude_vector)(\.[A-Za-z0-9_]+?)?(\.weight)?$"
)
_SAVED = re.compile(r"\.modules_to_save\.[A-Za-z0-9_]+")


def is_adapter_dir(path: Path) -> bool:
    """Whether ``path`` is a peft adapter directory."""
    return path.is_dir() and (path / "adapter_config.json").is_file()


@dataclass(frozen=True)
class LoraFactors:
    """One target's update in the orientation of the stored weight: ``scale * left @ right``.

    Attributes:
        target: canonical name of the weight the update is added to (``...q_proj.weight``).
        left: ``(rows, r)``; for ``nn.Linear`` peft's ``B``.
        right: ``(r, cols)``; for ``nn.Linear`` peft's ``A`` (flattened for a convolution).
        scale: ``lora_alpha / r`` (or ``/ sqrt(r)`` with rsLoRA).
        layout: ``linear``, ``fan_in_fan_out``, ``embedding`` or ``conv``.
    """

    target: str
    left: torch.Tensor
    right: torch.Tensor
    scale: float
    layout: str

    @property
    def rank(self) -> int:
        """``r``."""
        return int(self.right.shape[0])

    def delta(self, shape: tuple[int, ...]) -> torch.Tensor:
        """The dense update in float32, shaped as the stored weight (``shape``)."""
        d = (self.left.float() @ self.right.float()) * self.scale
        return d.reshape(shape)


def _pattern(patterns: dict[str, Any], module: str) -> Any:
    for key, value in patterns.items():
        if re.match(rf"(.*\.)?({key})$", module):
            return value
    return None


class AdapterSource(BaseSource):
    """A peft LoRA adapter directory: its tensors, and its updates as :class:`LoraFactors`.

    Attributes:
        config: ``adapter_config.json`` as a dict.
        factors: canonical weight name -> :class:`LoraFactors`.
        replaced: canonical weight name -> stored name of a ``modules_to_save`` tensor.
    """

    def __init__(self, path: str | Path, label: str | None = None) -> None:
        path = Path(path)
        super().__init__(label or str(path))
        self.path = path
        try:
            self.config: dict[str, Any] = json.loads((path / "adapter_config.json").read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read {path / 'adapter_config.json'}: {exc}") from None
        kind = self.config.get("peft_type", "LORA")
        if kind != "LORA":
            raise CheckpointError(
                f"expected a LoRA adapter in {path}, found peft_type {kind}; merge it with "
                "peft's merge_and_unload() and compare the merged model"
            )
        if self.config.get("use_dora"):
            raise CheckpointError(
                f"expected a LoRA adapter without DoRA in {path}, found use_dora = true (its "
                "magnitude rescaling is not supported); merge it with peft's merge_and_unload() "
                "and compare the merged model"
            )
        files = [path / "adapter_model.safetensors", path / "adapter_model.bin"]
        file = next((f for f in files if f.is_file()), None)
        if file is None:
            raise CheckpointError(
                f"expected adapter_model.safetensors or adapter_model.bin in {path}, found neither"
            )
        reader: BaseSource = (
            SafetensorsFile(file, index=False) if file.suffix == ".safetensors" else TorchFile(file)
        )
        self._reader = reader
        self.factors: dict[str, LoraFactors] = {}
        self.replaced: dict[str, str] = {}
        stored = sorted(reader.stored_names)
        self._parse(stored, reader)
        self._index(stored)

    def _parse(self, stored: Iterable[str], reader: BaseSource) -> None:
        parts: dict[str, dict[str, str]] = {}
        for name in stored:
            m = _PART.match(name)
            if m is None:  # modules_to_save, or base layers peft saved (save_embedding_layers)
                plain = _SAVED.sub("", name).replace(".base_layer.", ".")
                self.replaced[canonical_name(plain)] = name
            else:
                parts.setdefault(m.group("module"), {})[m.group("part")] = name
        alpha0 = float(self.config.get("lora_alpha", 8))
        rslora = bool(self.config.get("use_rslora", False))
        fan = bool(self.config.get("fan_in_fan_out", False))
        alphas = self.config.get("alpha_pattern") or {}
        for module, got in parts.items():
            target = canonical_name(module) + ".weight"
            if "lora_embedding_A" in got:
                a, b, layout = got["lora_embedding_A"], got.get("lora_embedding_B"), "embedding"
            else:
                a, b, layout = got.get("lora_A", ""), got.get("lora_B"), "linear"
            if not a or b is None:
                raise CheckpointError(
                    f"expected both LoRA factors A and B for {module} in {self.label}, found only "
                    f"{', '.join(got)}"
                )
            ta, tb = reader._load_stored(a), reader._load_stored(b)
            r = int(ta.shape[0])
            alpha = _pattern(alphas, canonical_name(module))
            alpha = float(alpha if alpha is not None else alpha0)
            scale = alpha / math.sqrt(r) if rslora else alpha / r
            if layout == "embedding":  # W (num, dim) += s (B A)^T = s A^T B^T
                left, right = ta.T, tb.T
            elif ta.ndim == 4:
                if tb.shape[2:] != (1, 1):
                    raise CheckpointError(
                        f"expected a 1x1 LoRA B kernel for {module}, found {tuple(tb.shape)}"
                    )
                left, right, layout = tb.flatten(1), ta.flatten(1), "conv"
            elif fan:  # Conv1D stores W (in, out): W += s (B A)^T
                left, right, layout = ta.T, tb.T, "fan_in_fan_out"
            else:
                left, right = tb, ta
            self.factors[target] = LoraFactors(target, left, right, scale, layout)

    def _load_stored(self, stored: str) -> torch.Tensor:
        return self._reader._load_stored(stored)

    def _shape_stored(self, stored: str) -> tuple[int, ...]:
        return self._reader._shape_stored(stored)

    def _dtype_stored(self, stored: str) -> torch.dtype:
        return self._reader._dtype_stored(stored)


class MergedSource(BaseSource):
    """``base`` with ``adapter`` merged in: ``W + scale * B A`` per target, lazily per tensor.

    Merged tensors are computed in float32 (as peft's ``merge_and_unload`` on a float32 model);
    :meth:`dtype` reports the base's stored dtype. :meth:`factors` gives a target's update for
    the factored spectrum.
    """

    def __init__(self, base: Any, adapter: AdapterSource) -> None:
        super().__init__(f"{base.label} + {adapter.label}")
        self.base, self.adapter = base, adapter
        names = list(base.names())
        known = set(names)
        for target, f in adapter.factors.items():
            if target not in known:
                raise CheckpointError(
                    f"adapter {adapter.label} targets {target}, which {base.label} does not hold"
                )
            shape = tuple(base.shape(target))
            rows, cols = f.left.shape[0], f.right.shape[1]
            if rows * cols != math.prod(shape) or (len(shape) == 2 and (rows, cols) != shape):
                raise CheckpointError(
                    f"adapter {adapter.label} updates {target} with a {rows}x{cols} product, "
                    f"but {base.label} holds it as {'x'.join(map(str, shape))}"
                )
        extra = [n for n in adapter.replaced if n not in known]
        self.notes = [*getattr(base, "notes", []), *adapter.notes]
        if adapter.replaced:
            self.notes.append(
                f"{len(adapter.replaced)} tensor(s) replaced by the adapter's modules_to_save"
            )
        self._order = names + extra
        self._stored = {n: n for n in self._order}
        self.config = getattr(base, "config", {})

    def factors(self, name: str) -> LoraFactors | None:
        """The adapter's update of ``name`` (stored orientation), or ``None``."""
        return self.adapter.factors.get(name)

    def _load_stored(self, stored: str) -> torch.Tensor:
        if stored in self.adapter.replaced:
            w = self.adapter._load_stored(self.adapter.replaced[stored])
        else:
            w = self.base.load(stored)
        f = self.adapter.factors.get(stored)
        if f is None:
            return w
        return w.float() + f.delta(tuple(w.shape))

    def _shape_stored(self, stored: str) -> tuple[int, ...]:
        if stored in self.adapter.replaced:
            return self.adapter._shape_stored(self.adapter.replaced[stored])
        return tuple(self.base.shape(stored))

    def _dtype_stored(self, stored: str) -> torch.dtype:
        if stored in self.adapter.replaced:
            return self.adapter._dtype_stored(self.adapter.replaced[stored])
        return self.base.dtype(stored)  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the base and the adapter."""
        self.base.close()
        self.adapter.close()


def merge_adapter(base: Any, adapter: AdapterSource) -> MergedSource:
    """``base`` + ``adapter`` (see :class:`MergedSource`); checks every target fits the base."""
    return MergedSource(base, adapter)
