"""LoRA fine-tuning: options, targets, and a tiny run whose adapter peft loads and merges."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from spectral_probe.errors import ConfigError
from spectral_probe.models import read_state_dict
from spectral_probe.training import FinetuneConfig, finetune, get_task
from spectral_probe.training.lora import lora_targets, resolve_lora

from .conftest import tiny_config

peft = pytest.importorskip("peft")


def test_resolve_defaults_and_off() -> None:
    assert resolve_lora({}) == {}
    assert resolve_lora({"rank": 8, "rslora": True}) == {
        "rank": 8,
        "alpha": 8,
        "rslora": True,
        "targets": "",
    }


@pytest.mark.parametrize(
    ("options", "method", "match"),
    [
        ({"alpha": 4}, "none", "lora.rank"),
        ({"rank": 0}, "none", "lora.rank"),
        ({"rank": 4, "alpha": 0}, "none", "lora.alpha"),
        ({"rank": 4, "targets": "("}, "none", "regular expression"),
        ({"rank": 4, "dropout": 0.1}, "none", "unknown 'dropout'"),
        ({"rank": 4}, "l2-sp+bss", "without l2-sp"),
    ],
)
def test_resolve_refuses(options: dict, method: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        resolve_lora(options, method)


def test_config_identity_unchanged_without_lora() -> None:
    full = FinetuneConfig(data="digits", method="l2")
    assert "lora" not in full.identity()
    lora = full.with_overrides(lora={"rank": 8})
    assert lora.identity()["lora"]["rank"] == 8
    assert lora.config_hash != full.config_hash
    assert "-l2-lora8-" in lora.run_id and "lora" not in full.run_id
    assert FinetuneConfig.from_dict(lora.resolve().to_dict()).resolve() == lora.resolve()


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3)
        self.dw = nn.Conv2d(8, 8, 3, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.proj = nn.Linear(16, 16)
        self.same = _SameConv(16, 16, 3)
        self.fc = nn.Linear(16, 4)


class _SameConv(nn.Conv2d):
    """Like timm's Conv2dSame: a Conv2d subclass whose constructor peft cannot call."""

    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__(cin, cout, k)


def test_targets_leave_grouped_convs_subclasses_and_head() -> None:
    assert lora_targets(_Net(), "fc") == (["stem", "pw", "proj"], ["dw", "same"])
    assert lora_targets(_Net(), "fc", "^p") == (["pw", "proj"], [])


@pytest.mark.parametrize("select", ["last", "best"])
def test_tiny_run_adapter_loads_and_merged_equals_peft(tmp_path, select: str) -> None:
    """With ``select = "best"`` the best weights so far are saved as best.safetensors (LoRA
    layers as they train, reloaded if the last iteration is worse) before the adapter and the
    merged model are written."""
    extra = {"val": "20%", "select": "best", "eval_every": 4} if select == "best" else {}
    cfg = tiny_config(method="none", iterations=12, lr=0.5, lora={"rank": 4, "alpha": 8}, **extra)
    run = finetune(cfg, tmp_path / "run")
    assert run.status == "finished"
    adapter = tmp_path / "run" / "adapter"
    meta = json.loads((adapter / "adapter_config.json").read_text())
    assert sorted(meta["target_modules"]) == ["conv1", "conv2"] and meta["r"] == 4

    # the start point as the task builds it (pre-trained body, new head), then peft's merge
    resolved = cfg.resolve()
    torch.manual_seed(resolved.seed)
    base = get_task(resolved.task).setup(resolved).model
    start = {k: v.clone() for k, v in base.state_dict().items()}
    merged = peft.PeftModel.from_pretrained(base, str(adapter)).merge_and_unload().state_dict()
    saved = read_state_dict(tmp_path / "run" / "model.safetensors")
    assert sorted(saved) == sorted(merged)
    for key, value in merged.items():
        torch.testing.assert_close(saved[key], value, rtol=0, atol=1e-6, msg=key)
    # LoRA moved the targets, the head trained, the frozen bias did not move
    assert not torch.allclose(saved["conv1.weight"], start["conv1.weight"])
    assert not torch.allclose(saved["fc.weight"], start["fc.weight"])
    torch.testing.assert_close(saved["conv2.bias"], start["conv2.bias"], rtol=0, atol=0)
    torch.testing.assert_close(saved["bn1.weight"], start["bn1.weight"], rtol=0, atol=0)
    assert not torch.equal(saved["bn1.running_mean"], start["bn1.running_mean"])
