"""EWC: Fisher against a loop of per-sample gradients, penalty by hand, buffers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spectral_probe.errors import ConfigError
from spectral_probe.regularizers import EWC, StepContext, diagonal_fisher

from ._models import make_batches, tiny_net


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))


def _data(n: int = 3, b: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(b, 5, generator=g), torch.randint(0, 3, (b,), generator=g)) for _ in range(n)
    ]


def loop_fisher(model: nn.Module, samples: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
    """One autograd backward per sample: mean of squared per-sample gradients."""
    out = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    for x, y in samples:
        model.zero_grad()
        F.cross_entropy(model(x[None]), y[None]).backward()
        for n, p in model.named_parameters():
            out[n] += p.grad**2
    return {n: v / len(samples) for n, v in out.items()}


def test_empirical_fisher_equals_per_sample_loop() -> None:
    model = _mlp()
    data = _data()
    got = diagonal_fisher(model, data, kind="empirical", max_samples=10, chunk_elements=100)
    samples = [(x[i], y[i]) for x, y in data for i in range(len(x))][:10]
    want = loop_fisher(model, samples)
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-5, atol=1e-7)


def test_true_fisher_uses_sampled_labels() -> None:
    model = _mlp()
    data = _data(1, 6)
    got = diagonal_fisher(model, data, kind="true", seed=3)
    x = data[0][0]
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        labels = torch.multinomial(torch.softmax(model(x), -1), 1, generator=gen).squeeze(1)
    want = loop_fisher(model, list(zip(x, labels, strict=True)))
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-5, atol=1e-7)
    assert not torch.equal(
        got["0.weight"], diagonal_fisher(model, data, kind="empirical")["0.weight"]
    )


def test_fisher_runs_in_eval_mode_with_batchnorm() -> None:
    net = tiny_net()
    net.train()
    got = diagonal_fisher(net, make_batches(1, b=3), kind="empirical")
    assert net.training  # mode restored
    net.eval()
    x, y = make_batches(1, b=3)[0]
    want = loop_fisher(net, list(zip(x, y, strict=True)))
    for n in want:
        torch.testing.assert_close(got[n], want[n], rtol=1e-4, atol=1e-8)


def test_penalty_by_hand_and_gradcheck() -> None:
    model = _mlp().double()
    data = [(x.double(), y) for x, y in _data()]
    reg = EWC(lam=3.0, fisher="empirical")
    reg.prepare(model, head="2", loader=data)
    star = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    fisher = diagonal_fisher(_star_model(model, star), data, kind="empirical")
    want = 1.5 * sum(
        float((fisher[n] * (p.detach() - star[n]) ** 2).sum()) for n, p in model.named_parameters()
    )
    ctx = StepContext(model, "2", data[0][0], data[0][1], model(data[0][0]))
    assert reg.penalty(ctx).item() == pytest.approx(want, rel=1e-6)

    names = [n for n, _ in model.named_parameters()]

    def f(*tensors: torch.Tensor) -> torch.Tensor:
        holder = _Named(dict(zip(names, tensors, strict=True)))
        return reg.penalty(StepContext(holder, "2", ctx.inputs, ctx.targets, ctx.logits))

    inputs = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())
    assert torch.autograd.gradcheck(f, inputs)


def _star_model(model: nn.Module, star: dict) -> nn.Module:
    copy = _mlp().double()
    copy.load_state_dict(star)
    return copy


class _Named(nn.Module):
    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self._t = tensors

    def named_parameters(self, *args, **kwargs):  # type: ignore[override]
        yield from self._t.items()


def test_buffers_new_head_and_reference() -> None:
    task_a = tiny_net(seed=1)
    model = tiny_net(seed=1)
    model.fc = nn.Linear(8, 5)  # a new head of another shape: no Fisher for it
    reg = EWC(fisher_samples=4)
    reg.prepare(model, head="fc", reference=task_a, loader=make_batches(1))
    assert "fc.weight" not in reg.star and "conv1.weight" in reg.star
    keys = reg.state_dict().keys()
    assert "star.conv1/weight" in keys and "fisher_diag.conv1/weight" in keys
    reg.to(torch.float64)
    assert all(b.dtype == torch.float64 for b in reg.buffers())
    x, y = make_batches(1)[0]
    ctx = StepContext(model, "fc", x, y, model(x))
    assert reg.penalty(ctx).item() == pytest.approx(0.0, abs=1e-12)  # at theta*
    fresh = EWC()
    fresh.load_state_dict(reg.state_dict())
    assert len(fresh.star) == len(reg.star)


def test_errors() -> None:
    model = _mlp()
    with pytest.raises(ConfigError, match="loader"):
        EWC().prepare(model, head="2")
    with pytest.raises(ConfigError, match="prepare"):
        EWC().penalty(StepContext(model, "2", torch.zeros(1), torch.zeros(1), torch.zeros(1)))
    with pytest.raises(ConfigError, match="ewc.fisher"):
        EWC(fisher="exact")
    with pytest.raises(ConfigError, match="sample"):
        diagonal_fisher(model, [])
