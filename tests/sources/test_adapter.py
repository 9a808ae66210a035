"""peft adapters written by peft: merged weights equal peft's merge_and_unload()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from spectral_probe.errors import CheckpointError
from spectral_probe.sources import AdapterSource, canonical_name, merge_adapter, open_source
from spectral_probe.spectral import factored_svd

from .conftest import tiny_bert, tiny_gpt2, tiny_llama


def _adapter(model: torch.nn.Module, path: Path, **config: object) -> dict[str, torch.Tensor]:
    """Save ``model``'s base and a random (nonzero B) LoRA adapter; return merged weights."""
    from peft import LoraConfig, get_peft_model

    model.save_pretrained(path / "base")
    peft_model = get_peft_model(model, LoraConfig(init_lora_weights=False, **config))  # type: ignore[arg-type]
    peft_model.save_pretrained(path / "adapter")
    merged = peft_model.merge_and_unload()
    return {canonical_name(k): v.detach() for k, v in merged.state_dict().items()}


def _check_merged(path: Path, expected: dict[str, torch.Tensor], targets: int) -> AdapterSource:
    base = open_source(str(path / "base"))
    adapter = open_source(str(path / "adapter"))
    assert isinstance(adapter, AdapterSource)
    assert len(adapter.factors) == targets
    merged = merge_adapter(base, adapter)
    for name in merged.names():
        if name in expected:
            torch.testing.assert_close(
                merged.load(name).float(), expected[name].float(), rtol=0, atol=1e-6
            )
    changed = [n for n in merged.names() if not torch.equal(merged.load(n), base.load(n))]
    assert len(changed) >= targets
    return adapter


@pytest.mark.parametrize(
    "config",
    [
        {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]},
        {
            "r": 4,
            "lora_alpha": 16,
            "use_rslora": True,
            "target_modules": ["q_proj", "down_proj", "embed_tokens"],
            "rank_pattern": {"down_proj": 2},
            "alpha_pattern": {r"layers\.1\.self_attn\.q_proj": 3},
        },
    ],
    ids=["plain", "rslora-patterns-embedding"],
)
def test_llama_adapter_merges_as_peft(tmp_path: Path, config: dict[str, object]) -> None:
    expected = _adapter(tiny_llama(), tmp_path, **config)
    adapter = _check_merged(
        tmp_path, expected, targets=5 if "embed_tokens" in config["target_modules"] else 4
    )  # type: ignore[operator]
    if "rank_pattern" in config:
        assert adapter.factors["layers.0.mlp.down_proj.weight"].rank == 2
        assert adapter.factors["layers.1.self_attn.q_proj.weight"].scale == pytest.approx(3 / 2)
        assert adapter.factors["layers.0.self_attn.q_proj.weight"].scale == pytest.approx(16 / 2)
        assert adapter.factors["embed_tokens.weight"].layout == "embedding"


def test_gpt2_fan_in_fan_out_adapter(tmp_path: Path) -> None:
    config = {"r": 4, "lora_alpha": 8, "target_modules": ["c_attn"], "fan_in_fan_out": True}
    expected = _adapter(tiny_gpt2(), tmp_path, **config)
    adapter = _check_merged(tmp_path, expected, targets=2)
    assert adapter.factors["h.0.attn.c_attn.weight"].layout == "fan_in_fan_out"


def test_modules_to_save_replace_the_head(tmp_path: Path) -> None:
    model = tiny_bert(cls="BertForSequenceClassification")
    config = {
        "r": 2,
        "lora_alpha": 4,
        "target_modules": ["query"],
        "modules_to_save": ["classifier"],
    }
    expected = _adapter(model, tmp_path, **config)
    adapter = _check_merged(tmp_path, expected, targets=2)
    assert "classifier.weight" in adapter.replaced


def test_update_spectrum_from_factors_matches_numpy(tmp_path: Path) -> None:
    _adapter(tiny_llama(), tmp_path, r=4, lora_alpha=8, target_modules=["o_proj"])
    adapter = open_source(str(tmp_path / "adapter"))
    f = adapter.factors["layers.1.self_attn.o_proj.weight"]  # type: ignore[attr-defined]
    dense = (f.scale * f.left.double() @ f.right.double()).numpy()
    s = factored_svd(f.left, f.right, scale=f.scale).S.numpy()
    np.testing.assert_allclose(s, np.linalg.svd(dense, compute_uv=False)[:4], rtol=1e-10)


def test_dora_and_mismatched_bases_are_refused(tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model

    get_peft_model(
        tiny_llama(), LoraConfig(r=2, target_modules=["q_proj"], use_dora=True)
    ).save_pretrained(tmp_path / "dora")
    with pytest.raises(CheckpointError, match="DoRA"):
        open_source(str(tmp_path / "dora"))
    _adapter(tiny_llama(), tmp_path, r=2, lora_alpha=4, target_modules=["q_proj"])
    other = tmp_path / "other"
    tiny_bert().save_pretrained(other)
    with pytest.raises(
        CheckpointError, match=r"targets layers\.\d\.self_attn\.q_proj\.weight, which"
    ):
        merge_adapter(open_source(str(other)), open_source(str(tmp_path / "adapter")))  # type: ignore[arg-type]
    wide = tmp_path / "wide"
    tiny_llama(num_attention_heads=2, head_dim=32).save_pretrained(wide)
    with pytest.raises(CheckpointError, match="holds it as"):
        merge_adapter(open_source(str(wide)), open_source(str(tmp_path / "adapter")))  # type: ignore[arg-type]


def test_the_adapter_weights_file_opens_the_adapter(tmp_path: Path) -> None:
    _adapter(tiny_llama(), tmp_path, r=2, lora_alpha=4, target_modules=["q_proj"])
    src = open_source(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    assert isinstance(src, AdapterSource) and len(src.factors) == 2
