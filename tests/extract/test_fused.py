"""Fused q/k/v projections: whole by default, split into the q, k, v the model computes.

Each split is checked against the model's own arithmetic on artifacts written by transformers
(GPT-2 ``c_attn``, GPT-NeoX ``query_key_value``) and by torch (``nn.MultiheadAttention``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spectral_probe.extract import iter_source_matrices
from spectral_probe.extract.fused import fused_layout, fused_part
from spectral_probe.sources import open_source

from ..sources.conftest import perturbed, tiny_gpt2

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALL = ("conv", "linear", "attention", "embedding")


def _tiny_neox(seed: int = 0) -> torch.nn.Module:
    import transformers as tr

    torch.manual_seed(seed)
    config = tr.GPTNeoXConfig(
        hidden_size=32, num_attention_heads=4, num_hidden_layers=1, intermediate_size=64,
        vocab_size=96, max_position_embeddings=32,
    )  # fmt: skip
    return tr.GPTNeoXForCausalLM(config).eval()


def _matrices(path: Path, split: bool) -> dict[str, torch.Tensor]:
    with open_source(str(path)) as src:
        return {
            sm.name: sm.load(src).float()
            for sm in iter_source_matrices(src, kinds=ALL, split_fused=split)
        }


def test_gpt2_c_attn_whole_by_default_and_split_as_the_model_splits(tmp_path: Path) -> None:
    model = tiny_gpt2()
    model.save_pretrained(tmp_path / "gpt2")
    whole = _matrices(tmp_path / "gpt2", split=False)
    assert whole["h.0.attn.c_attn"].shape == (96, 32) and "h.0.attn.c_attn:q" not in whole
    parts = _matrices(tmp_path / "gpt2", split=True)
    assert "h.0.attn.c_attn" not in parts
    x = torch.randn(5, 32)
    attn = model.transformer.h[0].attn
    with torch.no_grad():  # GPT2Attention: c_attn(x).split(embed_dim, dim=2), less the bias
        q, k, v = (attn.c_attn(x) - attn.c_attn.bias).split(32, dim=-1)
    for name, want in zip("qkv", (q, k, v)):
        got = x @ parts[f"h.0.attn.c_attn:{name}"].T
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert parts["h.0.attn.c_proj"].shape == (32, 32)  # not fused: unchanged


def test_gpt_neox_query_key_value_split_per_head(tmp_path: Path) -> None:
    model = _tiny_neox()
    model.save_pretrained(tmp_path / "neox")
    parts = _matrices(tmp_path / "neox", split=True)
    x = torch.randn(5, 32)
    attn = model.gpt_neox.layers[0].attention
    with torch.no_grad():  # GPTNeoXAttention: view(..., heads, 3 * head_size).chunk(3, dim=-1)
        qkv = (x @ attn.query_key_value.weight.T).view(5, 4, 24)
    for i, name in enumerate("qkv"):
        want = qkv.chunk(3, dim=-1)[i].reshape(5, 32)
        got = x @ parts[f"layers.0.attention.query_key_value:{name}"].T
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    whole = _matrices(tmp_path / "neox", split=False)
    assert whole["layers.0.attention.query_key_value"].shape == (96, 32)


def test_multihead_attention_in_proj_split_into_equal_thirds(tmp_path: Path) -> None:
    mha = torch.nn.MultiheadAttention(16, 4)
    torch.save(mha.state_dict(), tmp_path / "mha.pt")
    parts = _matrices(tmp_path / "mha.pt", split=False)  # split always, as for the module
    for i, name in enumerate("qkv"):
        assert torch.equal(parts[f"in_proj:{name}"], mha.in_proj_weight.detach().chunk(3)[i])


def test_unknown_layouts_stay_whole() -> None:
    assert fused_layout("layers.0.attention.query_key_value", 96, 32, {}) is None
    assert fused_layout("x.query_key_value", 96, 32, {"model_type": "chatglm", "n_head": 4}) is None
    assert fused_layout("x.attn.q_proj", 32, 32, {}) is None
    phi3 = {"model_type": "phi3", "num_attention_heads": 4, "num_key_value_heads": 2}
    assert fused_layout("x.qkv_proj", 64, 32, phi3) == (1, (32, 16, 16))  # grouped-query sizes
    falcon = {"model_type": "falcon", "num_attention_heads": 4, "num_kv_heads": 2}
    assert fused_layout(
        "x.query_key_value", 64, 32, falcon | {"new_decoder_architecture": True}
    ) == (
        2,
        (16, 8, 8),
    )
    assert fused_layout("x.query_key_value", 48, 32, falcon) == (1, (32, 8, 8))  # multi-query


def test_fused_part_selects_each_groups_block() -> None:
    rows = torch.arange(12.0).reshape(12, 1)  # 2 groups of (q 2, k 2, v 2)
    assert fused_part(rows, (2, (2, 2, 2)), 1).flatten().tolist() == [2, 3, 8, 9]
    assert fused_part(rows, (1, (6, 3, 3)), 2).flatten().tolist() == [9, 10, 11]


def test_an_adapter_on_c_attn_splits_its_update_from_the_factors(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    from spectral_probe.analysis import compare_weights

    base = tiny_gpt2()
    base.save_pretrained(tmp_path / "base")
    lora = LoraConfig(
        r=4, lora_alpha=8, target_modules=["c_attn"], init_lora_weights=False, fan_in_fan_out=True
    )
    peft_model = get_peft_model(perturbed(tiny_gpt2(), scale=0.0), lora)
    peft_model.save_pretrained(tmp_path / "adapter")
    merged = peft_model.merge_and_unload()
    res = compare_weights(
        str(tmp_path / "base"), str(tmp_path / "adapter"), device="cpu", split_fused=True
    )
    delta = (
        merged.transformer.h[1].attn.c_attn.weight - base.transformer.h[1].attn.c_attn.weight
    ).T
    for i, name in enumerate("qkv"):
        layer = f"h.1.attn.c_attn:{name}"
        want = np.linalg.svd(
            delta.detach()[32 * i : 32 * (i + 1)].double().numpy(), compute_uv=False
        )[:4]
        got = res.update[res.update["layer"] == layer]["sigma"].to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
        row = res.layers.set_index("layer").loc[layer]
        assert row["rows"] == 32 and row["lora_rank"] == 4
