r"""The |cos| similarity matrix of one layer of a comparison (Figure 1 of Shuttleworth et al.).

For the chosen layer, :math:`C_{ij} = |\langle t_i, b_j \rangle|` between the fine-tuned
matrix's top ``k`` singular vectors :math:`t_i` and every pre-trained one :math:`b_j`
(:func:`~spectral_probe.analysis.update.similarity_frame`). Row ``i`` is an intruder when its
largest entry is below :math:`\epsilon`. The layer is the one with the most intruders in a
comparison's ``layers`` table (ties: the larger ``w_rel_change``, then depth order), or the
one named. Its two matrices are read again, one tensor each, from the same models or files
``compare_weights`` read (a peft adapter as B is merged with A).

Example:
    >>> import pandas as pd
    >>> layers = pd.DataFrame({"layer": ["a", "b", "c"], "status": ["ok"] * 3,
    ...                        "intruders": [1, 3, 3], "w_rel_change": [0.1, 0.2, 0.5]})
    >>> pick_similarity_layer(layers)
    'c'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from ..errors import ConfigError
from ..extract.weights import pair_sources
from ._sources import close_all, open_pair
from .update import similarity_frame

__all__ = ["LayerSimilarity", "layer_similarity", "pick_similarity_layer", "similarity_for"]


@dataclass(frozen=True)
class LayerSimilarity:
    """One layer's similarity matrix, as a tidy table.

    Attributes:
        layer: the layer's name (as in the comparison's ``layers`` table).
        frame: columns ``tuned`` (i, 0-based index of B's singular vector), ``base`` (j, of A's),
            ``abs_cos`` (:math:`|\\langle t_i, b_j \\rangle|`).
        k: B's leading vectors shown (capped at min(m, n)).
        epsilon: the intruder threshold.
        side: ``"left"`` (U) or ``"right"`` (V) singular vectors.
        intruders: 0-based indices ``i`` whose largest :math:`|\\cos|` is below ``epsilon``.
        shape: ``(m, n)`` of the matrix.
    """

    layer: str
    frame: pd.DataFrame
    k: int
    epsilon: float
    side: str
    intruders: list[int]
    shape: tuple[int, int]


def pick_similarity_layer(layers: pd.DataFrame, layer: str | None = None) -> str:
    """``layer`` if the table has it, else the layer with the most intruders (see module doc).

    Raises:
        ConfigError: ``layer`` not among the compared layers, or no layer with intruder counts.
    """
    ok = layers[layers["status"] == "ok"] if "status" in layers else layers
    if layer is not None:
        if layer not in set(ok["layer"]):
            shown = ", ".join(list(ok["layer"])[:5])
            raise ConfigError(
                f"expected --similarity-layer to name a compared layer (e.g. {shown}), found {layer!r}"
            )
        return layer
    if "intruders" not in ok or ok.empty:
        raise ConfigError("expected a comparison with intruder counts, found none")
    order = ok.assign(
        _n=ok["intruders"].astype(float).fillna(-1.0),
        _d=ok["w_rel_change"].astype(float).fillna(0.0) if "w_rel_change" in ok else 0.0,
        _i=range(len(ok)),
    ).sort_values(["_n", "_d", "_i"], ascending=[False, False, True], kind="stable")
    return str(order["layer"].iloc[0])


def layer_similarity(
    model_a: Any,
    model_b: Any,
    *,
    layers: pd.DataFrame | None = None,
    layer: str | None = None,
    k: int = 10,
    epsilon: float = 0.5,
    side: Literal["left", "right"] = "left",
    arch_a: str | None = None,
    arch_b: str | None = None,
) -> LayerSimilarity:
    """The similarity matrix of ``layer`` (or the layer :func:`pick_similarity_layer` picks).

    Args:
        model_a: the pre-trained model (a spec, path, ``LoadedModel``, module or source).
        model_b: the fine-tune, or a peft adapter directory of ``model_a``.
        layers: a comparison's ``layers`` table to pick from (needed without ``layer``).
        layer: the layer to show.
        k: B's leading singular vectors (rows).
        epsilon: intruder threshold, for :attr:`LayerSimilarity.intruders`.
        side: left or right singular vectors.
        arch_a: architecture spec for a bare state dict ``model_a``.
        arch_b: the same for ``model_b``.

    Raises:
        ConfigError: no layer to pick, or ``layer`` not paired between the two models.
    """
    if layer is None:
        if layers is None:
            raise ConfigError(
                "expected layers (a comparison's table) or a layer name, found neither"
            )
        layer = pick_similarity_layer(layers)
    src_a, src_b, _, opened = open_pair(model_a, model_b, arch_a, arch_b)
    try:
        pair = next((p for p in pair_sources(src_a, src_b).pairs if p[0].name == layer), None)
        if pair is None:
            raise ConfigError(f"expected a layer {layer!r} in both models, found it in at most one")
        w0, w = pair[0].load(src_a), pair[1].load(src_b)
    finally:
        close_all(opened)
    small = min(w0.shape)
    frame = similarity_frame(w0, w, k=min(k, small), side=side)
    best = frame.groupby("tuned")["abs_cos"].max()
    intruders = [int(i) for i, c in best.items() if c < epsilon]
    return LayerSimilarity(
        layer=layer,
        frame=frame,
        k=min(k, small),
        epsilon=float(epsilon),
        side=side,
        intruders=intruders,
        shape=(int(w0.shape[0]), int(w0.shape[1])),
    )


def similarity_for(
    result: Any, model_a: Any, model_b: Any, layer: str | None = None
) -> LayerSimilarity | None:
    """The similarity matrix for a :class:`~spectral_probe.analysis.WeightComparison` of
    ``model_a`` and ``model_b``: its layer with most intruders (or ``layer``), its ``k`` and
    ``epsilon`` (left vectors, as its ``intruders`` column); ``None`` when the comparison
    has no intruder counts and no layer is named (``--top``, ``--intruder-k 0``)."""
    layers = result.layers
    if layer is None and ("intruders" not in layers or layers.empty):
        return None
    meta = result.meta
    return layer_similarity(
        model_a,
        model_b,
        layers=layers,
        layer=pick_similarity_layer(layers, layer),
        k=int(meta.get("intruder_k") or 10),
        epsilon=float(meta.get("intruder_epsilon") or 0.5),
    )
