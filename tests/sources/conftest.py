"""Tiny transformers models and peft adapters, written by the libraries themselves."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_llama(seed: int = 0, cls: str = "LlamaForCausalLM", **kw: object) -> torch.nn.Module:
    import transformers as tr

    torch.manual_seed(seed)
    options: dict[str, object] = {
        "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 96,
    }  # fmt: skip
    config = tr.LlamaConfig(**(options | kw))
    return getattr(tr, cls)(config).eval()


def tiny_gpt2(seed: int = 0) -> torch.nn.Module:
    import transformers as tr

    torch.manual_seed(seed)
    config = tr.GPT2Config(n_embd=32, n_layer=2, n_head=2, vocab_size=96, n_positions=32)
    config.bos_token_id = config.eos_token_id = 0
    return tr.GPT2LMHeadModel(config).eval()


def tiny_bert(seed: int = 0, cls: str = "BertModel") -> torch.nn.Module:
    import transformers as tr

    torch.manual_seed(seed)
    config = tr.BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        vocab_size=96, max_position_embeddings=32, num_labels=3,
    )  # fmt: skip
    return getattr(tr, cls)(config).eval()


def perturbed(model: torch.nn.Module, scale: float = 0.01, seed: int = 1) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="session")
def llama_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same decoder saved single, sharded, bf16 (sharded), and a fine-tune of it."""
    root = tmp_path_factory.mktemp("llama")
    model = tiny_llama()
    model.save_pretrained(root / "single")
    model.save_pretrained(root / "sharded", max_shard_size="20KB")
    model.to(torch.bfloat16).save_pretrained(root / "bf16", max_shard_size="20KB")
    perturbed(tiny_llama()).save_pretrained(root / "tuned", max_shard_size="20KB")
    return {p.name: p for p in root.iterdir()}
