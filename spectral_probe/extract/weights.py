"""Weight matrices of a network, layer by layer, and pairing two networks by name.

Conv1d/2d/3d (and transposed) weights are unfolded to ``(c_out, (c_in / groups) * prod(kernel))``
(:func:`spectral_probe.spectral.unfold_weight`); grouped convolutions can be split into one
matrix per group (``split_groups=True``, names ``MODULE:g0``, ``MODULE:g1``...). Linear weights
are used as they are. Attention projections are their own kind: fused projections
(``nn.MultiheadAttention.in_proj_weight``, timm's ``qkv``) are split into ``MODULE:q``,
``MODULE:k``, ``MODULE:v``; separate projections (BERT's ``query``/``key``/``value``,
``q_proj``...) and output projections keep their module names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd
import torch
from torch import Tensor, nn

from ..errors import ConfigError, NoSharedLayersError
from ..spectral import split_fused, split_groups, unfold_weight

__all__ = [
    "KINDS",
    "WeightMatrix",
    "SkippedLayer",
    "WeightPairs",
    "iter_weight_matrices",
    "pair_weight_matrices",
    "layer_table",
]

KINDS = ("conv", "linear", "attention")
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
