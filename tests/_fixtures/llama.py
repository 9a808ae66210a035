"""A tiny Llama decoder written by transformers' ``save_pretrained`` (sharded, bf16 or fp32)."""

from __future__ import annotations

from pathlib import Path

import torch


def tiny_llama(seed: int = 0, *, layers: int = 4, tied: bool = False) -> torch.nn.Module:
    """A 4-block ``LlamaForCausalLM`` with a few strong directions added to each matrix.

    Random initialisation alone gives pure-noise spectra whose scores barely differ; the
    added rank-one directions (a different number per matrix) spread them out.
    """
    import transformers as tr

    torch.manual_seed(seed)
    config = tr.LlamaConfig(
        hidden_size=48, intermediate_size=96, num_hidden_layers=layers, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=112, tie_word_embeddings=tied,
    )  # fmt: skip
    model = tr.LlamaForCausalLM(config).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for i, (_, p) in enumerate(model.named_parameters()):
            if p.ndim == 2:
                for k in range(i % 5):
                    u = torch.randn(p.shape[0], 1, generator=g)
                    v = torch.randn(1, p.shape[1], generator=g)
                    p.add_((0.5 + k) * u @ v / (u.norm() * v.norm()))
            else:
                p.add_(0.1 * torch.randn(p.shape, generator=g))
    return model


def save_tiny_llama(
    path: Path, *, dtype: torch.dtype = torch.float32, shard: str | None = "40KB", **kw: object
) -> torch.nn.Module:
    """Write :func:`tiny_llama` (and a tokenizer-like file) to ``path``; return the model."""
    model = tiny_llama(**kw).to(dtype)  # type: ignore[arg-type]
    if shard is None:
        model.save_pretrained(path)
    else:
        model.save_pretrained(path, max_shard_size=shard)
    return model
