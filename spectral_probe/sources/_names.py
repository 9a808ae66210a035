"""Canonical tensor names and depth order, shared by every source.

Wrappers that training code adds in front of a model's own names are stripped, repeatedly,
from the front of each name (:data:`WRAPPERS`):

* ``_orig_mod.``: ``torch.compile(model).state_dict()``;
* ``module.``: ``DistributedDataParallel`` / ``DataParallel``;
* ``base_model.model.``: a peft ``PeftModel``;
* ``model.``: a Lightning module holding the network as ``self.model``, and the
  ``*ForCausalLM`` wrappers of transformers (``model.layers.0...``);
* ``bert.``, ``roberta.``, ``transformer.``...: the task-head wrappers of transformers
  (``*ForSequenceClassification``, ``GPT2LMHeadModel``) around the bare encoder or decoder.

So a bare ``LlamaModel`` and a ``LlamaForCausalLM`` pair on ``layers.0.self_attn.q_proj.weight``,
and a BERT encoder pairs with its sequence-classification fine-tune; the heads they do not
share (``lm_head``, ``classifier``) stay as they are and are listed as unmatched.
"""

from __future__ import annotations

import re

__all__ = ["WRAPPERS", "canonical_name", "depth_key"]

#: Prefixes stripped from the front of a tensor name, in any order and any number of times.
WRAPPERS = (
    "_orig_mod.",
    "module.",
    "base_model.model.",
    "model.",
    "bert.",
    "roberta.",
    "deberta.",
    "distilbert.",
    "electra.",
    "albert.",
    "transformer.",
    "gpt_neox.",
)
_EMBED = re.compile(r"(^|\.)(embed\w*|wte|wpe|word_embeddings|\w*_embeddings|shared)(\.|$)")
_HEAD = re.compile(
    r"^(lm_head|classifier|score|head|heads|cls|qa_outputs|pooler|fc|embed_out)(\.|$)"
)
_FINAL = re.compile(r"^(norm|ln_f|final_layer_norm|final_layernorm)(\.|$)")
#: forward order of sibling modules inside a block, where the alphabet gets it wrong
_RANK = {
    name: i
    for i, name in enumerate(
        [
            "input_layernorm",
            "ln_1",
            "attention",
            "self_attn",
            "attn",
            "self_attention",
            "query",
            "q_proj",
            "q",
            "key",
            "k_proj",
            "k",
            "value",
            "v_proj",
            "v",
            "c_attn",
            "qkv",
            "query_key_value",
            "in_proj",
            "o_proj",
            "out_proj",
            "dense",
            "output",
            "post_attention_layernorm",
            "ln_2",
            "mlp",
            "block_sparse_moe",
            "intermediate",
            "gate",
            "router",
            "experts",
            "w1",
            "gate_proj",
            "fc1",
            "c_fc",
            "up_proj",
            "w3",
            "fc2",
            "w2",
            "down_proj",
            "c_proj",
        ]
    )
}


def canonical_name(name: str) -> str:
    """``name`` without the wrappers of :data:`WRAPPERS` in front.

    Example:
        >>> canonical_name("_orig_mod.module.model.layers.0.mlp.down_proj.weight")
        'layers.0.mlp.down_proj.weight'
        >>> canonical_name("bert.encoder.layer.0.attention.self.query.weight")
        'encoder.layer.0.attention.self.query.weight'
    """
    stripped = True
    while stripped:
        stripped = False
        for prefix in WRAPPERS:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix) :]
                stripped = True
    return name


def depth_key(name: str) -> tuple[int, list[tuple[int, int, str]]]:
    """Sort key putting names in depth order: embeddings, blocks by number, final norm, heads.

    Numbers sort by value (``layers.2`` before ``layers.10``), siblings inside a block in
    forward order where it is known (``q, k, v, o``; ``gate, up, down``), else by name.

    Example:
        >>> names = ["lm_head.weight", "layers.10.mlp.up_proj.weight", "embed_tokens.weight",
        ...          "layers.2.self_attn.q_proj.weight", "layers.2.mlp.down_proj.weight"]
        >>> sorted(names, key=depth_key)[0], sorted(names, key=depth_key)[-1]
        ('embed_tokens.weight', 'lm_head.weight')
    """
    if _HEAD.search(name):
        group = 3
    elif _FINAL.search(name):
        group = 2
    elif _EMBED.search(name) and not re.search(r"(^|\.)\d+\.", name):
        group = 0
    else:
        group = 1
    parts = [
        (int(p), 0, "") if p.isdigit() else (-1, _RANK.get(p, len(_RANK)), p)
        for p in name.split(".")
    ]
    return group, parts
