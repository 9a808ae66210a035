"""L2: the optimizer's weight decay equals the explicit penalty for SGD."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spectral_probe.errors import ConfigError
from spectral_probe.regularizers import L2, StepContext, build_regularizer

from ._models import make_batches, tiny_net


def _ctx(model: nn.Module) -> StepContext:
    x = torch.zeros(2, 3)
    return StepContext(model, "1", x, torch.zeros(2), torch.zeros(2, 2))


def test_explicit_penalty_by_hand() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)).double()
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            p.copy_(torch.arange(p.numel(), dtype=torch.float64).reshape(p.shape) + i)
    model[0].bias.requires_grad_(False)  # frozen parameters are not penalised
    by_hand = sum(float((p.detach() ** 2).sum()) for p in model.parameters() if p.requires_grad)
    reg = L2(alpha=0.3, explicit=True)
    assert reg.penalty(_ctx(model)).item() == pytest.approx(0.15 * by_hand)
    assert reg.value(model).item() == pytest.approx(0.15 * by_hand)
    assert reg.weight_decay("0.weight", model[0].weight, head="1") == 0.0


def test_gradcheck_float64() -> None:
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)

    def f(w: torch.Tensor) -> torch.Tensor:
        return L2(alpha=0.7, explicit=True).penalty(_ctx(_Holder(w)))

    assert torch.autograd.gradcheck(f, (w,))


class _Holder(nn.Module):
    """A module whose only 'parameter' is a given tensor (to gradcheck the penalty)."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self._w = w

    def parameters(self, recurse: bool = True):  # type: ignore[override]
        yield self._w

    def named_parameters(self, *args, **kwargs):  # type: ignore[override]
        yield "w", self._w


def test_optimizer_mode_has_no_penalty_and_decays_every_group() -> None:
    model = tiny_net()
    reg = build_regularizer("l2", alpha=0.05)
    reg.prepare(model, head="fc")
    groups = reg.param_groups(model, head="fc")
    assert {g["head"] for g in groups} == {True, False}
    assert all(g["weight_decay"] == 0.05 for g in groups)
    n = sum(len(g["params"]) for g in groups)
    assert n == len([p for p in model.parameters() if p.requires_grad])
    x, y = make_batches(1)[0]
    ctx = StepContext(model, "fc", x, y, model(x))
    total, parts = reg(ctx)
    assert total.item() == 0.0 and parts == {}


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_weight_decay_equals_explicit_penalty(momentum: float) -> None:
    """Three SGD steps with weight_decay=alpha and with the explicit penalty: same weights."""
    base = tiny_net().double()
    batches = [(x.double(), y) for x, y in make_batches(3)]
    results = []
    for explicit in (False, True):
        model = copy.deepcopy(base)
        reg = build_regularizer("l2", alpha=0.1, explicit=explicit)
        reg.prepare(model, head="fc")
        groups = reg.param_groups(model, head="fc")
        for g in groups:
            g["lr"] = 0.5 if g["head"] else 0.05
        opt = torch.optim.SGD(groups, lr=0.05, momentum=momentum)
        for x, y in batches:
            opt.zero_grad()
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y) + reg.penalty(
                StepContext(model, "fc", x, y, logits)
            )
            loss.backward()
            opt.step()
        results.append(model.state_dict())
    for key in results[0]:
        torch.testing.assert_close(results[0][key], results[1][key], rtol=1e-10, atol=1e-12)


def test_bad_hyperparameters() -> None:
    with pytest.raises(ConfigError, match="l2.alpha"):
        L2(alpha=-1.0)
    with pytest.raises(ConfigError, match="l2.explicit"):
        L2(explicit="yes")  # type: ignore[arg-type]
