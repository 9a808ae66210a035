"""L2-SP: hand computation, gradients, and the start point as buffers."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spectral_probe.errors import ConfigError
from spectral_probe.regularizers import L2SP, StepContext

from ._models import tiny_net


def _ctx(model: nn.Module, head: str = "1") -> StepContext:
    return StepContext(model, head, torch.zeros(1, 2), torch.zeros(1), torch.zeros(1, 2))


def _two_layer() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 2)).double()


def test_hand_computed() -> None:
    model = _two_layer()
    reg = L2SP(alpha=0.2, beta=0.4)
    reg.prepare(model, head="1")
    assert reg.penalty(_ctx(model)).item() == pytest.approx(
        0.1 * sum(float((p.detach() ** 2).sum()) for p in model[1].parameters())
    )  # at the start point only the head counts
    with torch.no_grad():
        model[0].weight += 1.0  # 6 entries moved by 1
        model[0].bias -= 2.0  # 3 entries moved by 2
    head_sq = sum(float((p.detach() ** 2).sum()) for p in model[1].parameters())
    want = 0.5 * 0.4 * (6 * 1.0 + 3 * 4.0) + 0.5 * 0.2 * head_sq
    assert reg.penalty(_ctx(model)).item() == pytest.approx(want)


def test_gradcheck_float64() -> None:
    model = _two_layer()
    reg = L2SP(alpha=0.3, beta=0.7)
    reg.prepare(model, head="1")
    params = list(model.parameters())
    moved = [p.detach() + torch.randn_like(p) for p in params]

    def f(*tensors: torch.Tensor) -> torch.Tensor:
        return reg.penalty(_ctx(_Params(model, tensors)))

    assert torch.autograd.gradcheck(f, tuple(m.requires_grad_(True) for m in moved))


class _Params(nn.Module):
    """Expose given tensors under the model's parameter names."""

    def __init__(self, model: nn.Module, tensors: tuple[torch.Tensor, ...]) -> None:
        super().__init__()
        self._named = list(zip([n for n, _ in model.named_parameters()], tensors, strict=True))

    def named_parameters(self, *args, **kwargs):  # type: ignore[override]
        yield from self._named

    def parameters(self, recurse: bool = True):  # type: ignore[override]
        for _, t in self._named:
            yield t


def test_reference_module_or_state_dict_and_new_parameters() -> None:
    pre = tiny_net(seed=1)
    model = tiny_net(seed=2)
    model.fc = nn.Linear(8, 5)  # a new head of another shape
    model.extra = nn.Linear(2, 2)  # a parameter without start point: pulled to zero
    for reference in (pre, pre.state_dict()):
        reg = L2SP(alpha=1.0, beta=1.0)
        reg.prepare(model, head="fc", reference=reference)
        assert "conv1.weight" in reg.start and "fc.weight" not in reg.start
        torch.testing.assert_close(reg.start["conv1.weight"], pre.conv1.weight)
        sp = sum(
            float(((p - pre.get_parameter(n)).detach() ** 2).sum())
            for n, p in model.named_parameters()
            if not n.startswith(("fc.", "extra."))
        )
        new = sum(
            float((p.detach() ** 2).sum())
            for n, p in model.named_parameters()
            if n.startswith(("fc.", "extra."))
        )
        assert reg.penalty(_ctx(model, "fc")).item() == pytest.approx(0.5 * (sp + new), rel=1e-5)


def test_buffers_follow_to_and_state_dict() -> None:
    model = tiny_net()
    reg = L2SP()
    reg.prepare(model, head="fc")
    keys = reg.state_dict().keys()
    assert "start.conv1/weight" in keys and "start.layer1/conv1/weight" in keys
    assert not any(k.startswith("start.fc") for k in keys)
    reg.to(torch.float64)
    assert all(b.dtype == torch.float64 for b in reg.buffers())
    assert reg.penalty(_ctx(model, "fc")).dtype == torch.float32  # promoted per tensor
    # restore into a fresh, unprepared instance (resume from a checkpoint)
    fresh = L2SP()
    fresh.load_state_dict(reg.state_dict())
    torch.testing.assert_close(fresh.start["conv1.weight"], reg.start["conv1.weight"])
    with torch.no_grad():
        model.conv1.weight += 0.1
    assert fresh.penalty(_ctx(model, "fc")).item() == pytest.approx(
        reg.penalty(_ctx(model, "fc")).item()
    )


def test_unprepared_and_bad_inputs() -> None:
    model = tiny_net()
    with pytest.raises(ConfigError, match="prepare"):
        L2SP().penalty(_ctx(model, "fc"))
    with pytest.raises(ConfigError, match="head"):
        L2SP().prepare(model, head="classifier")
    with pytest.raises(ConfigError, match="reference"):
        L2SP().prepare(model, head="fc", reference=nn.Linear(1, 1))
    with pytest.raises(ConfigError, match="beta"):
        L2SP(beta=float("nan"))


def test_deepcopy_keeps_buffers() -> None:
    model = tiny_net()
    reg = L2SP()
    reg.prepare(model, head="fc")
    clone = copy.deepcopy(reg)
    assert len(clone.start) == len(reg.start)
