"""Fused q/k/v projections and how their rows split into q, k and v.

A fused projection stores the three maps in one ``(rows, d_model)`` matrix (after GPT-2's
``Conv1D`` is transposed to out × in). Its rows are ``groups`` equal groups, each holding
consecutive blocks of ``q``, ``k`` and ``v`` rows; the layout is ``(groups, (q, k, v))``:

| tensor | model | layout |
|---|---|---|
| ``in_proj_weight`` | ``nn.MultiheadAttention`` | ``(1, (E, E, E))``: equal thirds |
| ``c_attn`` | GPT-2 | ``(1, (E, E, E))``: ``c_attn(x).split(E, dim=2)`` |
| ``c_attn`` | GPT-BigCode (multi-query) | ``(1, (E, d, d))`` |
| ``Wqkv`` | MPT | ``(1, (E, E, E))`` |
| ``qkv`` | timm ViT | ``(1, (E, E, E))`` |
| ``qkv_proj`` | Phi-3 (grouped-query) | ``(1, (H·d, K·d, K·d))`` |
| ``query_key_value`` | GPT-NeoX, BLOOM | ``(H, (d, d, d))``: interleaved per head |
| ``query_key_value`` | Falcon (new decoder) | ``(K, (H/K·d, d, d))``: per key/value group |
| ``query_key_value`` | Falcon (multi-query) | ``(1, (H·d, d, d))`` |

``E`` is the model width, ``H`` the attention heads, ``K`` the key/value heads and
``d = E / H``; they are read from the model's ``config.json``. A fused tensor whose layout is
not known (no config, another ``model_type``, sizes that do not add up) is analysed whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

__all__ = ["FUSED_QKV", "FusedLayout", "fused_layout", "fused_part"]

#: last name part of the fused q/k/v projections (``in_proj_weight`` is a tensor, not a module)
FUSED_QKV = ("c_attn", "query_key_value", "Wqkv", "qkv_proj", "qkv")

FusedLayout = tuple[int, tuple[int, int, int]]


def _heads(config: Mapping[str, Any]) -> int | None:
    for key in ("num_attention_heads", "n_head", "num_heads"):
        if isinstance(config.get(key), int) and config[key] > 0:
            return int(config[key])
    return None


def fused_layout(
    module: str, rows: int, cols: int, config: Mapping[str, Any]
) -> FusedLayout | None:
    """The layout of fused projection ``module`` with an out × in matrix of ``rows × cols``,
    or ``None`` when it is not fused or its layout is not known (module doc).

    Example:
        >>> fused_layout("layers.0.attention.query_key_value", 96, 32, {"model_type": "gpt_neox", "num_attention_heads": 4})
        (4, (8, 8, 8))
    """
    last = module.rpartition(".")[2]
    if last not in (*FUSED_QKV, "in_proj"):
        return None
    kind = config.get("model_type")
    thirds = last in ("in_proj", "qkv") or (last == "c_attn" and kind != "gpt_bigcode")
    if thirds or (last == "Wqkv" and kind == "mpt"):
        layout: FusedLayout | None = (1, (rows // 3,) * 3)
    else:
        layout = _by_config(last, cols, config)
    if layout is None or layout[0] * sum(layout[1]) != rows:
        return None
    return layout


def _by_config(last: str, width: int, config: Mapping[str, Any]) -> FusedLayout | None:
    heads, kind = _heads(config), config.get("model_type")
    if heads is None or width % heads:
        return None
    d = width // heads
    kv = config.get("num_key_value_heads") or config.get("num_kv_heads") or heads
    if last == "c_attn" and kind == "gpt_bigcode":
        return 1, (width, d, d) if config.get("multi_query", True) else (width, width, width)
    if last == "qkv_proj" and kind in ("phi3", "phimoe"):
        return 1, (heads * d, kv * d, kv * d)
    if last != "query_key_value":
        return None
    if kind in ("gpt_neox", "bloom"):
        return heads, (d, d, d)
    if kind == "falcon":
        if config.get("new_decoder_architecture"):
            return kv, (heads // kv * d, d, d)
        if config.get("multi_query", True):
            return 1, (heads * d, d, d)
        return heads, (d, d, d)
    return None


def fused_part(matrix: Tensor, layout: FusedLayout, part: int) -> Tensor:
    """Rows of q (``part=0``), k (1) or v (2) of a fused out × in ``matrix`` (or of anything
    with its rows, such as the left factor of a LoRA update), in their stored order."""
    groups, blocks = layout
    start = sum(blocks[:part])
    grouped = matrix.reshape(groups, sum(blocks), *matrix.shape[1:])
    return grouped[:, start : start + blocks[part]].reshape(-1, *matrix.shape[1:])
