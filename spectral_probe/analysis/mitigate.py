r"""Intruder mitigation for a whole model: scaled weights written as a model or a peft adapter.

Shuttleworth et al. (2025) scale each intruder component of a fine-tuned :math:`W` by
:math:`\lambda` (peft ``tuners/lora/intruders.py``, ``reduce_intruder_dimension``, default
0.75): :math:`W' = W + (\lambda - 1)\sum_{i \in I} \sigma_i u_i v_i^\top`
(:func:`~spectral_probe.spectral.scale_intruders`). For a LoRA adapter peft refits rank-:math:`r`
factors of :math:`\Delta W' = W' - W_0` (:func:`~spectral_probe.spectral.scale_intruders_factored`),
so the written adapter is what peft's mitigation produces, and the merged model is
:math:`W_0 + s B'A'` (what merging that adapter gives); for a full fine-tune the merged model
holds :math:`W'` itself.

Intruders are found as peft finds them: LAPACK SVDs of :math:`W_0` and :math:`W` in float64,
left vectors, top ``k``, threshold ``epsilon`` (:func:`~spectral_probe.spectral.detect_intruders`),
one matrix pair in memory at a time. This decomposes every examined pair once more (it needs
:math:`W`'s vectors of both sides at the intruder indices): an opt-in pass after the
comparison, not part of it.

Written directories are built beside their target and renamed in (nothing half-written):
``write_merged`` copies the safetensors model directory that holds the weights (the fine-tune,
or the base of an adapter) with the changed tensors replaced, shards, index and every other
file (``config.json``, tokenizer) kept; ``write_adapter`` copies the adapter directory with
new ``lora_A``/``lora_B`` for the layers that had intruders.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import Tensor

from .._io import write_json
from ..errors import ConfigError, OutputError
from ..extract.weights import KINDS, pair_sources
from ..sources import AdapterSource, canonical_name
from ..spectral import detect_intruders, scale_intruders, scale_intruders_factored
from ._sources import close_all, open_pair
from .truncate import INDEX_NAME, _is_weights, _new_dir, _shards

__all__ = ["MitigationResult", "check_mitigation", "mitigate_intruders"]

_ADAPTER_FILE = "adapter_model.safetensors"
_LORA_KEY = re.compile(r"^(?P<module>.+?)\.(?P<part>lora_A|lora_B)(\.[A-Za-z0-9_]+?)?\.weight$")


@dataclass(frozen=True)
class MitigationResult:
    """What :func:`mitigate_intruders` changed and wrote.

    Attributes:
        layers: one row per examined layer: ``layer``, ``intruders``, ``intruder_indices``
            (1-based, space-separated), ``scaled`` (whether its weights were changed).
        written: the directories written.
        meta: lambda, k, epsilon, the sources.
    """

    layers: pd.DataFrame
    written: list[Path] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _copy_with(source: Path, out: Path, replace: dict[str, Tensor], record: dict[str, Any]) -> Path:
    """``source`` (a safetensors model directory) copied to ``out`` with ``replace`` swapped in."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    shards, index = _shards(source)
    tmp = _new_dir(out)
    try:
        total = 0
        for shard in shards:
            tensors: dict[str, Tensor] = {}
            with safe_open(str(source / shard), framework="pt") as fh:
                metadata = fh.metadata()
                for name in fh.keys():  # noqa: SIM118 (safe_open has no __iter__)
                    t = fh.get_tensor(name)
                    if name in replace:
                        t = replace[name].to(t.dtype)
                    tensors[name] = t.contiguous()
                    total += t.numel() * t.element_size()
            save_file(tensors, str(tmp / shard), metadata=metadata)
        if index is not None:
            index = dict(index)
            index["metadata"] = dict(index.get("metadata") or {}) | {"total_size": total}
            (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        _finish(tmp, source, record, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _finish(tmp: Path, source: Path, record: dict[str, Any], out: Path) -> None:
    """Copy ``source``'s other files (config, tokenizer...), write the record, move in."""
    for item in sorted(source.iterdir()):
        if item.is_file() and not _is_weights(item.name):
            shutil.copy2(item, tmp / item.name)
    write_json(tmp / "intruders.json", record)
    _place(tmp, out)


def _place(tmp: Path, out: Path) -> None:
    if out.exists():
        out.rmdir()  # empty, checked by _new_dir
    os.replace(tmp, out)


def _copy_adapter(
    adapter: AdapterSource,
    out: Path,
    factors: dict[str, tuple[Tensor, Tensor]],
    record: dict[str, Any],
) -> Path:
    """The adapter directory copied to ``out`` with new (B, A) for the targets in ``factors``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    source = adapter.path
    file = source / _ADAPTER_FILE
    if not file.is_file():
        raise ConfigError(
            f"expected {_ADAPTER_FILE} in {source} for --write-adapter, found a pickled adapter; "
            "re-save it with peft's save_pretrained(safe_serialization=True)"
        )
    tmp = _new_dir(out)
    try:
        tensors: dict[str, Tensor] = {}
        done: set[str] = set()
        with safe_open(str(file), framework="pt") as fh:
            metadata = fh.metadata()
            for name in fh.keys():  # noqa: SIM118
                t = fh.get_tensor(name)
                hit = _LORA_KEY.match(name)
                target = canonical_name(hit.group("module")) + ".weight" if hit else None
                if hit and target in factors:
                    b_new, a_new = factors[target]
                    t = (b_new if hit.group("part") == "lora_B" else a_new).to(t.dtype)
                    done.add(f"{target}:{hit.group('part')}")
                tensors[name] = t.contiguous()
        missing = [t for t in factors if f"{t}:lora_A" not in done or f"{t}:lora_B" not in done]
        if missing:
            raise ConfigError(
                f"expected lora_A and lora_B weights of {missing[0]} in {file}, found them missing"
            )
        save_file(tensors, str(tmp / _ADAPTER_FILE), metadata=metadata)
        _finish(tmp, source, record, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _model_dir(spec: Any, option: str) -> Path:
    path = Path(str(spec))
    if not path.is_dir():
        raise ConfigError(
            f"expected a transformers safetensors directory for {option}, found {spec}"
        )
    _shards(path)  # one clear line unless it holds safetensors
    return path


def check_mitigation(
    lam: float | None,
    write_merged: str | os.PathLike[str] | None,
    write_adapter: str | os.PathLike[str] | None,
    fine_tunes: int = 1,
) -> None:
    """One clear line, before any work, for options that cannot be honoured (``fine_tunes``:
    how many fine-tunes of one base are compared; the mitigation takes one)."""
    if lam is not None and fine_tunes > 1:
        raise ConfigError(
            f"expected one fine-tune with --scale-intruders, found {fine_tunes}; run one at a time"
        )
    if lam is None:
        if write_merged is not None or write_adapter is not None:
            raise ConfigError(
                "expected --scale-intruders LAMBDA with --write-merged/--write-adapter, found none"
            )
        return
    if not (lam >= 0.0 and lam != float("inf")):
        raise ConfigError(f"expected --scale-intruders >= 0, found {lam}")
    if write_merged is None and write_adapter is None:
        raise ConfigError(
            "expected --write-merged DIR or --write-adapter DIR with --scale-intruders, found neither"
        )
    for option, out in (("--write-merged", write_merged), ("--write-adapter", write_adapter)):
        path = Path(out) if out is not None else None
        if path is not None and path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise OutputError(
                f"expected {option} to be a new or empty directory, found {path} in use"
            )


def mitigate_intruders(
    model_a: Any,
    model_b: Any,
    *,
    lam: float = 0.75,
    k: int = 10,
    epsilon: float = 0.5,
    write_merged: str | os.PathLike[str] | None = None,
    write_adapter: str | os.PathLike[str] | None = None,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Any = KINDS,
) -> MitigationResult:
    """Scale the intruder components of ``model_b`` (against ``model_a``) by ``lam`` and write them.

    Args:
        model_a: the pre-trained model: a transformers safetensors directory.
        model_b: the fine-tune (such a directory) or a peft LoRA adapter directory of
            ``model_a`` (``nn.Linear`` or GPT-2 ``Conv1D`` targets).
        lam: :math:`\\lambda` (peft's ``mitigation_lambda``); 1 changes nothing.
        k: top singular vectors examined (peft's ``top_k``, capped at min(m, n)).
        epsilon: intruder threshold (peft's ``threshold_epsilon``).
        write_merged: a new directory for the whole model with the scaled weights (for an
            adapter, merged into the base).
        write_adapter: for an adapter, a new adapter directory with the refitted factors.
        include: regular expression of layer names to keep (as ``compare_weights``).
        exclude: regular expression of layer names to drop.
        kinds: layer kinds examined.

    Raises:
        ConfigError: ``lam`` not finite and non-negative, nothing to write, ``write_adapter``
            without an adapter, a model that is not a safetensors directory, a LoRA target that
            is not a plain linear layer.
        OutputError: an output directory in use or not writable.
    """
    check_mitigation(lam, write_merged, write_adapter)
    src_a, src_b, _, opened = open_pair(model_a, model_b)
    try:
        adapter = getattr(src_b, "adapter", None)
        if write_adapter is not None and adapter is None:
            raise ConfigError(
                f"expected a peft adapter as MODEL_B for --write-adapter, found {model_b}"
            )
        merged_from = None
        if write_merged is not None:
            merged_from = _model_dir(model_a if adapter is not None else model_b, "--write-merged")
        rows, merged, refits = [], {}, {}
        for sa, sb in pair_sources(
            src_a, src_b, include=include, exclude=exclude, kinds=kinds
        ).pairs:
            lora = adapter.factors.get(sb.tensor) if adapter is not None else None
            if adapter is not None and lora is None:
                continue  # the base's own weights: unchanged
            if sb.expert is not None or sb.part is not None or sb.rows is not None:
                continue  # slices of a stored tensor are not written back
            a64, b64 = sa.load(src_a).double(), sb.load(src_b).double()
            small = min(a64.shape)
            found, u, s, v = detect_intruders(a64, b64, k=min(k, small), epsilon=epsilon)
            scaled = found.count > 0 and lam != 1.0
            rows.append(
                {
                    "layer": sa.name,
                    "intruders": found.count,
                    "intruder_indices": " ".join(str(int(i) + 1) for i in found.indices),
                    "scaled": scaled,
                }
            )
            if lora is not None:
                if lora.layout not in ("linear", "fan_in_fan_out"):
                    if scaled:
                        raise ConfigError(
                            f"expected nn.Linear or Conv1D LoRA targets for --scale-intruders, "
                            f"found {lora.layout} at {sb.tensor}"
                        )
                    new_w = b64
                else:
                    # peft's B (out, r) and A (r, in) in the analysed (out, in) orientation,
                    # stored as such for fan_in_fan_out too (peft transposes only B A)
                    left, right = lora.left.double(), lora.right.double()
                    if sb.transposed:
                        left, right = right.T, left.T
                    if scaled:
                        left, right = scale_intruders_factored(
                            left, right, lora.scale, u, s, v, found.indices, lam
                        )
                        refits[sb.tensor] = (left, right)
                    new_w = a64 + lora.scale * (left @ right)
            else:
                new_w = scale_intruders(b64, u, s, v, found.indices, lam) if scaled else b64
            if merged_from is not None and (scaled or lora is not None):
                stored = (src_a if adapter is not None else src_b).stored_name(sb.tensor)
                merged[stored] = new_w.T if sb.transposed else new_w
            del a64, b64
        layers = pd.DataFrame(rows, columns=["layer", "intruders", "intruder_indices", "scaled"])
        meta = {
            "model_a": str(model_a),
            "model_b": str(model_b),
            "lambda": lam,
            "intruder_k": k,
            "intruder_epsilon": epsilon,
        }
        record = {"meta": meta, "layers": layers.to_dict(orient="records")}
        written = []
        if write_adapter is not None and adapter is not None:
            written.append(_copy_adapter(adapter, Path(write_adapter), refits, record))
        if merged_from is not None and write_merged is not None:
            written.append(_copy_with(merged_from, Path(write_merged), merged, record))
    finally:
        close_all(opened)
    return MitigationResult(layers, written, meta)
