"""Every registered regularizer through the same tiny CNN for one training step."""

from __future__ import annotations

import math

import pytest
import torch

from spectral_probe.regularizers import build_regularizer, list_regularizers

from ._models import make_batches, step, tiny_net

# the few settings that keep data-dependent preparation tiny; everything else is default
QUICK = {"delta": {"probe_epochs": 1, "attention_batches": 1}, "ewc": {"fisher_samples": 6}}
SPECS = [info.name for info in list_regularizers()] + ["l2-sp+bss", "delta+bss", "ewc+bss+tsvd"]


def _quick(spec: str) -> dict:
    out = {}
    for name in spec.split("+"):
        out.update({f"{name}.{k}": v for k, v in QUICK.get(name, {}).items()})
    return out


@pytest.mark.parametrize("spec", SPECS)
def test_one_step_gives_finite_loss_and_gradients(spec: str) -> None:
    model = tiny_net()
    batches = make_batches(2)
    reg = build_regularizer(spec, **_quick(spec))
    reg.prepare(model, head="fc", loader=batches)
    groups = reg.param_groups(model, head="fc")
    for g in groups:
        g["lr"] = 0.1 if g["head"] else 0.01
    opt = torch.optim.SGD(groups, momentum=0.9)
    model.train()
    reg.train()
    x, y = batches[0]
    loss, parts = step(model, reg, x, y)
    assert math.isfinite(loss.item())
    assert all(math.isfinite(v.item()) for v in parts.values())
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    opt.step()
    # a second step after the update, then state restored into a fresh, prepared instance
    opt.zero_grad()
    loss2, _ = step(model, reg, *batches[1])
    loss2.backward()
    assert math.isfinite(loss2.item())
    fresh = build_regularizer(spec, **_quick(spec))
    fresh.prepare(model, head="fc", loader=batches)
    fresh.load_state_dict(reg.state_dict())
    for key, value in reg.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
