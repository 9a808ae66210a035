"""hf: specs: a decoder loads without transformers' load report; weight analyses keep lm_head."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spectral_probe.analysis import compare_weights
from spectral_probe.errors import ModelSpecError
from spectral_probe.models import load_model


@pytest.fixture(scope="module")
def decoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import transformers as tr

    torch.manual_seed(0)
    config = tr.LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, vocab_size=64,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("hf") / "decoder"
    tr.LlamaForCausalLM(config).save_pretrained(path)
    return path


def test_decoder_loads_quietly(decoder: Path, capfd: pytest.CaptureFixture[str]) -> None:
    loaded = load_model(f"hf:{decoder}")
    out, err = capfd.readouterr()
    assert "UNEXPECTED" not in out + err and "LOAD REPORT" not in out + err
    assert loaded.modality == "text"


def test_weight_analyses_read_hf_as_tensors_with_lm_head(decoder: Path) -> None:
    res = compare_weights(f"hf:{decoder}", f"hf:{decoder}", device="cpu")
    assert res.layers["layer"].iloc[-1] == "lm_head" and res.skipped.empty


def test_local_looking_names_fail_without_a_hub_lookup() -> None:
    with pytest.raises(ModelSpecError, match="no such path"):
        load_model("hf:models/typo/decoder")
