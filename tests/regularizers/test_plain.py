"""The plain-loop regularizers against NumPy and hand-derived values, and the docs' loops run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from spectral_probe.errors import ConfigError
from spectral_probe.regularizers import (
    BSS,
    BatchSpectralShrinkage,
    DELTAPenalty,
    EWCPenalty,
    L2SPPenalty,
    SpectralTruncation,
    StepContext,
)

from ._models import make_batches, tiny_net

DOCS = Path(__file__).resolve().parents[2] / "docs" / "regularizers.md"


@pytest.mark.parametrize(("b", "d", "k"), [(8, 5, 1), (6, 10, 2), (12, 12, 3)])
def test_bss_is_the_sum_of_the_k_smallest_squared_singular_values(b, d, k):
    f = torch.randn(b, d, generator=torch.Generator().manual_seed(b * d), dtype=torch.float64)
    expected = np.sort(np.linalg.svd(f.numpy(), compute_uv=False) ** 2)[:k].sum()
    assert float(BatchSpectralShrinkage(k=k)(f)) == pytest.approx(expected, rel=1e-10)


def test_bss_gradient_equals_the_engine_term_divided_by_eta():
    f = torch.randn(16, 6, generator=torch.Generator().manual_seed(0), requires_grad=True)
    BatchSpectralShrinkage(k=2)(f).backward()
    plain = f.grad.clone()
    f.grad = None
    ctx = StepContext(nn.Linear(1, 1), "", f, f, f, features=f)
    BSS(eta=0.5, k=2).penalty(ctx).backward()
    torch.testing.assert_close(plain, f.grad / 0.5)


def test_bss_bad_input_names_shapes():
    with pytest.raises(ConfigError, match=r"shape \(4, 3\)"):
        BatchSpectralShrinkage(k=4)(torch.randn(4, 3))
    with pytest.raises(ConfigError, match="bss.k"):
        BatchSpectralShrinkage(k=0)


def test_truncation_is_numpys_rank_b_minus_r_reconstruction_and_identity_in_eval():
    f = torch.randn(6, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u, s, vt = np.linalg.svd(f.numpy(), full_matrices=False)
    expected = (u[:, :4] * s[:4]) @ vt[:4]
    tsvd = SpectralTruncation(r=2)
    np.testing.assert_allclose(tsvd(f).numpy(), expected, atol=1e-10)
    assert tsvd.eval()(f) is f


def test_l2sp_is_half_beta_distance_plus_half_alpha_head_norm():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    penalty = L2SPPenalty(model, head="2", alpha=0.3, beta=0.7)
    head_sq = sum(float(p.detach().square().sum()) for p in model[2].parameters())
    assert float(penalty()) == pytest.approx(0.5 * 0.3 * head_sq, rel=1e-6)
    with torch.no_grad():
        model[0].weight.add_(0.1)
    expected = 0.5 * 0.7 * 0.1**2 * model[0].weight.numel() + 0.5 * 0.3 * head_sq
    assert float(penalty()) == pytest.approx(expected, rel=1e-5)
    assert all(k.startswith("term.start.") for k in penalty.state_dict())  # not the model


def test_ewc_is_zero_at_the_task_a_weights_and_quadratic_away():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    batches = [(torch.randn(8, 5), torch.randint(0, 3, (8,))) for _ in range(2)]
    ewc = EWCPenalty(model, batches, lam=10.0, fisher="empirical")
    assert float(ewc()) == 0.0
    # empirical Fisher by hand: mean over samples of squared per-sample gradients
    grads = []
    for x, y in batches:
        for xi, yi in zip(x, y):
            model.zero_grad()
            nn.functional.cross_entropy(model(xi[None]), yi[None]).backward()
            grads.append(model[0].weight.grad.clone())
    fisher = torch.stack(grads).square().mean(0)
    with torch.no_grad():
        model[0].weight.add_(0.2)
    assert float(ewc()) == pytest.approx(0.5 * 10.0 * float((fisher * 0.04).sum()), rel=1e-4)


def test_delta_is_zero_at_the_start_point_and_grows_when_feature_maps_move():
    model = tiny_net()
    batches = make_batches(n=2, b=6)
    delta = DELTAPenalty(
        model, head="fc", loader=batches, layers=["layer1", "layer2"], kappa=0.0, probe_epochs=1
    )
    x = batches[0][0]
    model.eval()
    model(x)
    assert float(delta(x)) == pytest.approx(0.0, abs=1e-10)
    with torch.no_grad():
        model.layer2[0].weight.mul_(1.5)
    model(x)
    assert float(delta(x)) > 0
    delta.remove_hooks()


def _loops() -> dict[str, str]:
    """The ```python blocks of docs/regularizers.md that start with ``# plain loop: NAME``."""
    blocks = re.findall(r"```python\n(# plain loop: ([\w-]+)\n.*?)```", DOCS.read_text(), re.S)
    return {name: code for code, name in blocks}


def test_every_method_shows_a_plain_loop():
    assert set(_loops()) == {"bss", "tsvd", "l2-sp", "delta", "ewc"}


@pytest.mark.parametrize("name", ["tsvd", "l2-sp", "delta", "ewc"])
def test_the_docs_loops_run(name):
    ns: dict[str, object] = {}
    exec(compile(_loops()[name], f"docs/regularizers.md ({name})", "exec"), ns)
    assert torch.isfinite(ns["loss"]).item()


def test_the_docs_bss_loop_makes_the_penalty_fall():
    code = _loops()["bss"]
    setup = code.split("for step")[0]
    bss = BatchSpectralShrinkage(k=1)

    def penalty_after(source: str) -> float:
        ns: dict[str, object] = {}
        exec(compile(source, "docs/regularizers.md (bss)", "exec"), ns)
        with torch.no_grad():
            return float(bss(ns["backbone"](ns["x"][:32])))  # a fixed batch

    before = penalty_after(setup)
    with_bss = penalty_after(code)
    assert "0.1 * bss(f)" in code
    without = penalty_after(code.replace("0.1 * bss(f)", "0.0 * bss(f)"))
    assert with_bss < 0.5 * before and with_bss < 0.5 * without
