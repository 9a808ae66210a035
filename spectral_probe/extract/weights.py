"""Weight matrices of a network, layer by layer, and pairing two networks by name.

Conv1d/2d/3d (and transposed) weights are unfolded to ``(c_out, (c_in / groups) * prod(kernel))``
(:func:`spectral_probe.spectral.unfold_weight`); grouped convolutions can be split into one
matrix per group (``split_groups=True``, names ``MODULE:g0``, ``MODULE:g1``...). Linear weights
are used as they are. Attention projections are their own kind: fused projections
(``nn.MultiheadAttention.in_proj_weight``, timm's ``qkv``) are split into ``MODULE:q``,
``MODULE:k``, ``MODULE:v``; separate projections (BERT's ``query``/``key``/``value``,
``q_proj``...) and output projections keep their module names.

The same from a :class:`~spectral_probe.sources.TensorSource`, without a model
(:func:`iter_source_matrices`, :func:`pair_sources`): a layer per floating ``NAME.weight`` of
2 to 5 dimensions (name ``NAME``), kinds from names and shapes:

* 3- to 5-D: ``conv``, unfolded to ``(c_out, c_in k...)`` (groups and transposition are not
  stored in a file: a grouped convolution reads as stored, per group block);
* 2-D embedding tables (``embed_tokens``, ``wte``, ``word_embeddings``...): ``embedding``;
* 2-D attention projections (``q_proj``, ``query``, ``c_attn``, ``query_key_value``, anything
  under ``attn``/``self_attn``/``attention``): ``attention``; fused q/k/v analysed whole;
* other 2-D weights (``lm_head`` included): ``linear``;
* ``NAME.in_proj_weight`` (``nn.MultiheadAttention``): ``attention``, split into
  ``NAME.in_proj:q``, ``:k``, ``:v`` as for the module (its ``out_proj`` keeps the module's type,
  ``NonDynamicallyQuantizableLinear``); other fused projections (``c_attn``,
  ``query_key_value``, whose heads may interleave q, k and v) are analysed whole;
* 3-D expert stacks without ``.weight`` (``mlp.experts.gate_up_proj``, ``(experts, out, in)``):
  one ``linear`` matrix per expert, ``NAME:e0``, ``NAME:e1``...

GPT-2's ``Conv1D`` stores ``(in, out)``; its weights (``c_attn``, ``c_proj``, ``c_fc`` in a
GPT-2 layout) are transposed to ``(out, in)`` so that left singular vectors live in the output
space, as for ``nn.Linear``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import ConfigError, NoSharedLayersError
from ..sources import TensorSource
from ..spectral import split_fused, split_groups, unfold_weight
from .fused import FusedLayout, fused_layout, fused_part

__all__ = [
    "KINDS",
    "SOURCE_KINDS",
    "WeightMatrix",
    "SkippedLayer",
    "WeightPairs",
    "iter_weight_matrices",
    "pair_weight_matrices",
    "layer_table",
    "SourceMatrix",
    "SourcePairs",
    "iter_source_matrices",
    "pair_sources",
    "source_layer_table",
    "adapter_table",
]

KINDS = ("conv", "linear", "attention")
#: the kinds of :func:`iter_source_matrices`: :data:`KINDS` plus the opt-in embedding tables
#: (the largest matrices of a language model; a model's modules never yield them)
SOURCE_KINDS = (*KINDS, "embedding")
_CONV = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)
_ATTN_NAME = re.compile(
    r"(^|\.)(query|key|value|q_proj|k_proj|v_proj|o_proj|out_proj|qkv)$|attention\.output\.dense$"
)
_ATTN_TENSOR = re.compile(
    r"(^|\.)(query|key|value|q_proj|k_proj|v_proj|o_proj|out_proj|qkv|qkv_proj|c_attn|"
    r"query_key_value|Wqkv|in_proj)$|(^|\.)(attn|self_attn|attention|self_attention)\."
)
#: what a weight file that names no architecture is read as (``meta["inferred_arch"]`` of the
#: weight analyses, a note of the weight commands)
INFERRED_NOTE = (
    "layers read from tensor names and shapes (a Conv/Linear per weight; grouped convolutions "
    "are unfolded as stored, groups unknown)"
)
#: embedding tables, by the last part of the name
_EMBED_TENSOR = re.compile(r"embed|^wte$|^wpe$|^shared$", re.IGNORECASE)
_CONV1D = re.compile(r"(^|\.)(c_attn|c_proj|c_fc|q_attn)$")


@dataclass(frozen=True)
class WeightMatrix:
    """One weight matrix of a network.

    Attributes:
        name: unique name: the module's dotted name, plus ``:q``/``:k``/``:v`` or ``:gN`` for splits.
        module: the dotted module name.
        kind: ``"conv"``, ``"linear"`` or ``"attention"``.
        module_type: the module's class name (``Conv2d``...).
        shape: shape of the parameter it came from.
        matrix: the 2-D matrix (a view of the parameter where possible, detached).
        groups: the convolution's groups (1 otherwise).
    """

    name: str
    module: str
    kind: str
    module_type: str
    shape: tuple[int, ...]
    matrix: Tensor
    groups: int = 1


@dataclass(frozen=True)
class SkippedLayer:
    """A layer present in only one model, or with different shapes in the two."""

    name: str
    reason: str
    shape_a: tuple[int, ...] | None
    shape_b: tuple[int, ...] | None


@dataclass(frozen=True)
class WeightPairs:
    """Matrices of two models paired by name, and what could not be paired."""

    pairs: list[tuple[WeightMatrix, WeightMatrix]]
    skipped: list[SkippedLayer]


def _is_attention(name: str, parent: nn.Module | None) -> bool:
    if _ATTN_NAME.search(name):
        return True
    return parent is not None and "attention" in type(parent).__name__.lower()


def _module_matrices(
    name: str, mod: nn.Module, parent: nn.Module | None, split: bool
) -> Iterator[WeightMatrix]:
    tname = type(mod).__name__
    if isinstance(mod, _CONV):
        w = mod.weight.detach()
        transposed = isinstance(mod, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
        mat = unfold_weight(w, transposed=transposed, groups=mod.groups)
        if split and mod.groups > 1:
            for g, block in enumerate(split_groups(mat, mod.groups)):
                yield WeightMatrix(
                    f"{name}:g{g}", name, "conv", tname, tuple(w.shape), block, mod.groups
                )
        else:
            yield WeightMatrix(name, name, "conv", tname, tuple(w.shape), mat, mod.groups)
    elif isinstance(mod, nn.MultiheadAttention):
        if mod.in_proj_weight is not None:
            w = mod.in_proj_weight.detach()
            for part, block in zip("qkv", split_fused(w)):
                yield WeightMatrix(
                    f"{name}.in_proj:{part}", name, "attention", tname, tuple(w.shape), block
                )
        else:
            for part in "qkv":
                w = getattr(mod, f"{part}_proj_weight").detach()
                yield WeightMatrix(
                    f"{name}.{part}_proj", name, "attention", tname, tuple(w.shape), w
                )
    elif isinstance(mod, nn.Linear):
        w = mod.weight.detach()
        if not _is_attention(name, parent):
            yield WeightMatrix(name, name, "linear", tname, tuple(w.shape), w)
        elif name.rsplit(".", 1)[-1] == "qkv" and w.shape[0] == 3 * w.shape[1]:
            for part, block in zip("qkv", split_fused(w)):
                yield WeightMatrix(
                    f"{name}:{part}", name, "attention", tname, tuple(w.shape), block
                )
        else:
            yield WeightMatrix(name, name, "attention", tname, tuple(w.shape), w)


def _compile(pattern: str | None, flag: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"expected a regular expression for {flag}, found {pattern!r} ({exc})"
        ) from None


def iter_weight_matrices(
    model: nn.Module,
    *,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Sequence[str] = KINDS,
    split_groups: bool = False,
) -> Iterator[WeightMatrix]:
    """Yield the weight matrices of ``model`` in module order.

    Args:
        model: any ``nn.Module``.
        include: keep only names matching this regular expression (``re.search``).
        exclude: drop names matching this regular expression.
        kinds: any of ``"conv"``, ``"linear"``, ``"attention"``.
        split_groups: one matrix per group for grouped convolutions.
    """
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        raise ConfigError(
            f"expected layer kinds among {', '.join(KINDS)}, found {', '.join(unknown) or 'none'}"
        )
    inc, exc = _compile(include, "--include"), _compile(exclude, "--exclude")
    parents: dict[str, nn.Module] = {}
    for name, mod in model.named_modules():
        parents.update({f"{name}.{c}" if name else c: mod for c, _ in mod.named_children()})
        if not name:
            continue
        for wm in _module_matrices(name, mod, parents.get(name), split_groups):
            if wm.kind not in kinds:
                continue
            if inc is not None and not inc.search(wm.name):
                continue
            if exc is not None and exc.search(wm.name):
                continue
            yield wm


def _close_pairing(
    a: Mapping[str, Any], b: Mapping[str, Any], pairs: list[Any], skipped: list[SkippedLayer]
) -> None:
    """Record B's unmatched layers in ``skipped``; refuse a pairing that found no pair."""
    skipped.extend(
        SkippedLayer(n, "only in model B", None, wb.shape) for n, wb in b.items() if n not in a
    )
    if not pairs:
        ea = next(iter(a), "none")
        eb = next(iter(b), "none")
        raise NoSharedLayersError(
            f"expected the two models to share layers of the same name and shape, found none: "
            f"A has {len(a)} weight layers (e.g. {ea}), B has {len(b)} (e.g. {eb})"
        )


def pair_weight_matrices(model_a: nn.Module, model_b: nn.Module, **filters: object) -> WeightPairs:
    """Pair the matrices of two models by name; list the rest as skipped.

    Layers whose shapes differ (typically a replaced classifier head) and layers present in
    only one model are listed in ``skipped``. Raises :class:`NoSharedLayersError` if
    nothing pairs.
    """
    a = {wm.name: wm for wm in iter_weight_matrices(model_a, **filters)}  # type: ignore[arg-type]
    b = {wm.name: wm for wm in iter_weight_matrices(model_b, **filters)}  # type: ignore[arg-type]
    pairs: list[tuple[WeightMatrix, WeightMatrix]] = []
    skipped: list[SkippedLayer] = []
    for name, wa in a.items():
        wb = b.get(name)
        if wb is None:
            skipped.append(SkippedLayer(name, "only in model A", wa.shape, None))
        elif wa.matrix.shape != wb.matrix.shape:
            skipped.append(
                SkippedLayer(name, "shapes differ (a replaced head?)", wa.shape, wb.shape)
            )
        else:
            pairs.append((wa, wb))
    _close_pairing(a, b, pairs, skipped)
    return WeightPairs(pairs, skipped)


def layer_table(model: nn.Module, **filters: object) -> pd.DataFrame:
    """One row per weight matrix: name, kind, module type, parameter shape, matrix shape."""
    rows = [
        {
            "name": wm.name,
            "kind": wm.kind,
            "type": wm.module_type,
            "shape": "x".join(map(str, wm.shape)),
            "matrix": f"{wm.matrix.shape[0]}x{wm.matrix.shape[1]}",
            "groups": wm.groups,
            "params": int(torch.tensor(wm.matrix.shape).prod()),
        }
        for wm in iter_weight_matrices(model, **filters)  # type: ignore[arg-type]
    ]
    return pd.DataFrame(
        rows, columns=["name", "kind", "type", "shape", "matrix", "groups", "params"]
    )


@dataclass(frozen=True)
class SourceMatrix:
    """One weight matrix of a :class:`~spectral_probe.sources.TensorSource`, not yet loaded.

    Attributes:
        name: layer name (the tensor name without ``.weight``; ``:eN`` for expert ``N``).
        tensor: the source's canonical tensor name.
        kind: ``conv``, ``linear``, ``attention`` or ``embedding``.
        module_type: ``Linear``, ``Conv1D`` (GPT-2), ``Conv2d``..., ``Embedding``,
            ``MultiheadAttention`` or ``Experts``.
        shape: the stored tensor's shape.
        matrix_shape: ``(rows, cols)`` of the analysed matrix.
        dtype: the stored dtype.
        transposed: stored ``(in, out)`` (GPT-2 ``Conv1D``), analysed transposed.
        expert: index into a 3-D expert stack.
        rows: analyse only the first ``rows`` rows (a resized vocabulary).
        part: ``0``, ``1``, ``2`` for the q, k, v rows of a fused projection.
        fused: the fused projection's layout (:func:`~spectral_probe.extract.fused.fused_layout`).
    """

    name: str
    tensor: str
    kind: str
    module_type: str
    shape: tuple[int, ...]
    matrix_shape: tuple[int, int]
    dtype: torch.dtype
    transposed: bool = False
    expert: int | None = None
    rows: int | None = None
    part: int | None = None
    fused: FusedLayout | None = None

    def load(self, source: TensorSource) -> Tensor:
        """The 2-D matrix, in its stored dtype (one tensor read from ``source``)."""
        return self.from_stored(source.load(self.tensor))

    def from_stored(self, t: Tensor) -> Tensor:
        """The analysed matrix from the stored tensor ``t``."""
        if self.expert is not None:
            t = t[self.expert]
        if t.ndim > 2:
            t = unfold_weight(t)
        if self.transposed:
            t = t.T
        return self.select_rows(t)

    def select_rows(self, t: Tensor) -> Tensor:
        """The analysed rows of an out × in matrix, or of anything with its rows (a LoRA
        update's left factor): one part of a fused projection, the shared vocabulary rows."""
        if self.part is not None and self.fused is not None:
            t = fused_part(t, self.fused, self.part)
        if self.rows is not None:
            t = t[: self.rows]
        return t


@dataclass(frozen=True)
class SourcePairs:
    """Matrices of two sources paired by canonical name, what could not be paired, and notes."""

    pairs: list[tuple[SourceMatrix, SourceMatrix]]
    skipped: list[SkippedLayer]
    notes: list[str] = field(default_factory=list)


def _source_layout(source: TensorSource, names: list[str]) -> bool:
    """Whether ``source`` holds GPT-2 ``Conv1D`` weights (stored ``(in, out)``)."""
    config: dict[str, Any] = getattr(source, "config", None) or {}
    if config.get("model_type") in ("gpt2", "openai-gpt"):
        return True
    return any(n.endswith("attn.c_attn.weight") for n in names) and "wte.weight" in names


def _fused_parts(sm: SourceMatrix, config: dict[str, Any]) -> Iterator[SourceMatrix]:
    """The q, k and v parts of a fused projection (``NAME:q``...), or ``sm`` whole when its
    layout is not known."""
    layout = fused_layout(sm.name, *sm.matrix_shape, config)
    if layout is None:
        yield sm
        return
    groups, blocks = layout
    for i, p in enumerate("qkv"):
        shape = (groups * blocks[i], sm.matrix_shape[1])
        yield dataclasses.replace(
            sm, name=f"{sm.name}:{p}", matrix_shape=shape, part=i, fused=layout
        )


def _source_matrices(source: TensorSource, split_fused: bool = False) -> Iterator[SourceMatrix]:
    names = source.names()
    conv1d = _source_layout(source, names)
    config: dict[str, Any] = getattr(source, "config", None) or {}
    fused = {n for n in names if n.endswith("in_proj_weight")}
    for sm in _stored_matrices(source, names, conv1d, fused):
        if sm.module_type == "MultiheadAttention" or (split_fused and sm.kind == "attention"):
            yield from _fused_parts(sm, config)
        else:
            yield sm


def _stored_matrices(
    source: TensorSource, names: list[str], conv1d: bool, fused: set[str]
) -> Iterator[SourceMatrix]:
    for tensor in names:
        shape = tuple(source.shape(tensor))
        dtype = source.dtype(tensor)
        if not dtype.is_floating_point or not 2 <= len(shape) <= 5:
            continue
        module, _, attr = tensor.rpartition(".")
        if attr == "in_proj_weight" and len(shape) == 2 and shape[0] == 3 * shape[1]:
            name = f"{module}.in_proj" if module else "in_proj"
            yield SourceMatrix(
                name, tensor, "attention", "MultiheadAttention", shape, (shape[0], shape[1]), dtype
            )  # split into q, k, v always, as for the module
            continue
        if attr != "weight" or not module:
            if len(shape) == 3 and "experts" in tensor.split("."):
                for e in range(shape[0]):
                    yield SourceMatrix(
                        f"{tensor}:e{e}", tensor, "linear", "Experts", shape,
                        (shape[1], shape[2]), dtype, expert=e,
                    )  # fmt: skip
            continue
        if len(shape) > 2:
            mshape = (shape[0], int(torch.tensor(shape[1:]).prod()))
            yield SourceMatrix(
                module, tensor, "conv", f"Conv{len(shape) - 2}d", shape, mshape, dtype
            )
        elif _EMBED_TENSOR.search(module.rpartition(".")[2]):
            rc = (shape[0], shape[1])
            yield SourceMatrix(module, tensor, "embedding", "Embedding", shape, rc, dtype)
        else:
            transposed = conv1d and bool(_CONV1D.search(module))
            mshape = (shape[1], shape[0]) if transposed else (shape[0], shape[1])
            kind = "attention" if _ATTN_TENSOR.search(module) else "linear"
            mtype = "Conv1D" if transposed else "Linear"
            if module.endswith("out_proj") and f"{module[:-9]}.in_proj_weight" in fused:
                mtype = "NonDynamicallyQuantizableLinear"  # nn.MultiheadAttention's out_proj
            yield SourceMatrix(module, tensor, kind, mtype, shape, mshape, dtype, transposed)


def iter_source_matrices(
    source: TensorSource,
    *,
    include: str | None = None,
    exclude: str | None = None,
    kinds: Sequence[str] = KINDS,
    split_fused: bool = False,
) -> Iterator[SourceMatrix]:
    """Yield the weight matrices of ``source`` in depth order, unloaded (see the module doc).

    Args:
        source: any :class:`~spectral_probe.sources.TensorSource`.
        include: keep only layer names matching this regular expression (``re.search``).
        exclude: drop layer names matching this regular expression.
        kinds: any of ``conv``, ``linear``, ``attention``, ``embedding`` (default: all but
            ``embedding``).
        split_fused: split fused q/k/v projections (``c_attn``, ``query_key_value``, ``Wqkv``,
            ``qkv_proj``) into ``NAME:q``, ``:k``, ``:v`` where their layout is known
            (:mod:`spectral_probe.extract.fused`); ``in_proj_weight`` is always split.
    """
    unknown = sorted(set(kinds) - set(SOURCE_KINDS))
    if unknown or not kinds:
        raise ConfigError(
            f"expected layer kinds among {', '.join(SOURCE_KINDS)}, found {', '.join(unknown) or 'none'}"
        )
    inc, exc = _compile(include, "--include"), _compile(exclude, "--exclude")
    for sm in _source_matrices(source, split_fused):
        if sm.kind not in kinds:
            continue
        if inc is not None and not inc.search(sm.name):
            continue
        if exc is not None and exc.search(sm.name):
            continue
        yield sm


def _vocab_rows(a: SourceMatrix, b: SourceMatrix) -> bool:
    """Two vocabulary tables (embedding or LM head) that differ in rows only."""
    vocab = a.kind == "embedding" or a.name.rpartition(".")[2] in ("lm_head", "embed_out")
    return vocab and a.matrix_shape[1] == b.matrix_shape[1] and not (a.transposed or b.transposed)


def pair_sources(source_a: TensorSource, source_b: TensorSource, **filters: Any) -> SourcePairs:
    """Pair the matrices of two sources by canonical name; list the rest as skipped.

    A vocabulary table (embedding or LM head) whose row count changed (a resized vocabulary)
    is compared on the shared rows and noted; any other shape difference, and a layer in one
    source only, is listed in ``skipped``. Notes from the sources (tied embeddings...) are
    kept. Raises :class:`NoSharedLayersError` if nothing pairs.
    """
    a = {sm.name: sm for sm in iter_source_matrices(source_a, **filters)}
    b = {sm.name: sm for sm in iter_source_matrices(source_b, **filters)}
    notes = list(dict.fromkeys([*getattr(source_a, "notes", []), *getattr(source_b, "notes", [])]))
    pairs: list[tuple[SourceMatrix, SourceMatrix]] = []
    skipped: list[SkippedLayer] = []
    for name, sa in a.items():
        sb = b.get(name)
        if sb is None:
            skipped.append(SkippedLayer(name, "only in model A", sa.shape, None))
        elif sa.matrix_shape == sb.matrix_shape:
            pairs.append((sa, sb))
        elif _vocab_rows(sa, sb):
            rows = min(sa.matrix_shape[0], sb.matrix_shape[0])
            cols = sa.matrix_shape[1]
            pairs.append(
                (
                    dataclasses.replace(sa, rows=rows, matrix_shape=(rows, cols)),
                    dataclasses.replace(sb, rows=rows, matrix_shape=(rows, cols)),
                )
            )
            notes.append(
                f"{name}: vocabulary resized from {sa.matrix_shape[0]} to {sb.matrix_shape[0]} "
                f"rows; compared on the {rows} shared rows"
            )
        else:
            skipped.append(
                SkippedLayer(name, "shapes differ (a replaced head?)", sa.shape, sb.shape)
            )
    _close_pairing(a, b, pairs, skipped)
    return SourcePairs(pairs, skipped, notes)


def source_layer_table(source: TensorSource, **filters: Any) -> pd.DataFrame:
    """:func:`layer_table` of a source: one row per matrix, plus its stored ``dtype``."""
    rows = [
        {
            "name": sm.name,
            "kind": sm.kind,
            "type": sm.module_type,
            "shape": "x".join(map(str, sm.shape)),
            "matrix": f"{sm.matrix_shape[0]}x{sm.matrix_shape[1]}",
            "groups": 1,
            "params": sm.matrix_shape[0] * sm.matrix_shape[1],
            "dtype": str(sm.dtype).removeprefix("torch."),
        }
        for sm in iter_source_matrices(source, **filters)
    ]
    return pd.DataFrame(
        rows, columns=["name", "kind", "type", "shape", "matrix", "groups", "params", "dtype"]
    )


def adapter_table(adapter: Any) -> pd.DataFrame:
    """One row per target of a LoRA adapter (:class:`~spectral_probe.sources.AdapterSource`):
    the updated layer, the stored weight's shape, rank, scale and layout; then the tensors it
    replaces (``modules_to_save``), with rank 0."""
    rows = [
        {
            "name": f.target.removesuffix(".weight"),
            "shape": f"{f.left.shape[0]}x{f.right.shape[1]}",
            "rank": f.rank,
            "scale": f.scale,
            "layout": f.layout,
        }
        for f in adapter.factors.values()
    ]
    rows += [
        {"name": name.removesuffix(".weight"), "shape": "", "rank": 0, "scale": math.nan,
         "layout": "replaced"}
        for name in adapter.replaced
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["name", "shape", "rank", "scale", "layout"])
