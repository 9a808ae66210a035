"""Intruder dimensions against NumPy and against peft's own detector and mitigation."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from spectral_probe.errors import ConfigError
from spectral_probe.spectral import (
    detect_intruders,
    find_intruders,
    intruder_sweep,
    max_cosines,
    scale_intruders,
    scale_intruders_factored,
    similarity_matrix,
)


def _orth(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    return np.linalg.qr(rng.standard_normal((rows, cols)))[0]


def _pretrained(m: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = min(m, n)
    return _orth(m, r, rng) @ np.diag(np.linspace(3.0, 0.1, r)) @ _orth(n, r, rng).T


def _lora(m: int, n: int, r: int, strength: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Factors whose update puts ``r`` random directions of size ~``strength`` into the top."""
    rng = np.random.default_rng(seed + 100)
    b = _orth(m, r, rng) * np.linspace(strength, strength / 2, r)
    a = _orth(n, r, rng).T
    return b, a


def _numpy_intruders(w0: np.ndarray, w: np.ndarray, k: int, eps: float, side: str) -> list[int]:
    u0, _, v0t = np.linalg.svd(w0, full_matrices=False)
    u, _, vt = np.linalg.svd(w, full_matrices=False)
    base, tuned = (u0, u) if side == "left" else (v0t.T, vt.T)
    cos = np.abs(tuned[:, :k].T @ base).max(axis=1)
    return [int(i) for i in np.nonzero(cos < eps)[0]]


@settings(max_examples=15, deadline=None)
@given(
    m=st.integers(12, 40),
    n=st.integers(12, 40),
    seed=st.integers(0, 10_000),
    side=st.sampled_from(["left", "right"]),
    strength=st.floats(0.5, 6.0),
)
def test_detection_matches_numpy(m: int, n: int, seed: int, side: str, strength: float) -> None:
    w0 = _pretrained(m, n, seed)
    b, a = _lora(m, n, 3, strength, seed)
    w = w0 + b @ a
    found = detect_intruders(torch.from_numpy(w0), torch.from_numpy(w), side=side)[0]  # type: ignore[arg-type]
    ref = _numpy_intruders(w0, w, 10, 0.5, side)
    # a cosine within rounding of epsilon may fall either way; none here is that close
    assert found.indices.tolist() == ref
    assert found.count == len(ref)
    np.testing.assert_allclose(found.sigma.numpy(), np.linalg.svd(w, compute_uv=False)[ref])
    assert found.max_cos.shape == (10,)


def test_similarity_matrix_and_sweep() -> None:
    rng = np.random.default_rng(0)
    base, tuned = _orth(20, 20, rng), _orth(20, 6, rng)
    c = similarity_matrix(torch.from_numpy(base), torch.from_numpy(tuned), k=4)
    np.testing.assert_allclose(c.numpy(), np.abs(tuned[:, :4].T @ base))
    cos = max_cosines(torch.from_numpy(base), torch.from_numpy(tuned), k=6)
    eps = np.linspace(0.05, 1.0, 20)
    counts = intruder_sweep(cos, eps.tolist())
    np.testing.assert_array_equal(counts.numpy(), [(cos.numpy() < e).sum() for e in eps])
    assert counts.tolist() == sorted(counts.tolist())


def test_analytic_rotation_and_identity() -> None:
    # identical matrices: every top vector matches itself, no intruders
    w0 = torch.from_numpy(_pretrained(16, 16, 1))
    found, *_ = detect_intruders(w0, w0.clone())
    assert found.count == 0 and torch.allclose(found.max_cos, torch.ones(10, dtype=torch.float64))
    # a rank-1 update along e_1 + e_2 over W0 = diag(1, 1, ...): W's top vector is at 45 degrees to both
    d = torch.diag(torch.tensor([1.0, 1.0, 0.9, 0.8, 0.7, 0.6, 0.55, 0.5], dtype=torch.float64))
    x = torch.zeros(8, dtype=torch.float64)
    x[:2] = 2**-0.5
    w = d + 5.0 * torch.outer(x, x)
    found, *_ = detect_intruders(d, w, k=3)
    assert found.max_cos[0] == pytest.approx(2**-0.5)
    assert found.count == 0  # 0.707 > 0.5
    tighter = detect_intruders(d, w, k=1, epsilon=0.75)[0]
    assert tighter.indices.tolist() == [0] and tighter.sigma.tolist() == pytest.approx([6.0])


def test_degenerate_and_bad_input() -> None:
    w0 = torch.from_numpy(_pretrained(12, 9, 0))
    with pytest.raises(ConfigError, match="k <= 9"):
        detect_intruders(w0, w0, k=10)
    with pytest.raises(ConfigError, match="one shape"):
        detect_intruders(w0, w0.T)
    with pytest.raises(ConfigError, match="epsilon in"):
        find_intruders(torch.eye(3), torch.eye(3), torch.ones(3), k=2, epsilon=0.0)
    with pytest.raises(ConfigError, match="side"):
        detect_intruders(w0, w0, k=3, side="up")  # type: ignore[arg-type]
    # a zero pre-trained matrix: its (arbitrary) basis still gives finite cosines
    found, *_ = detect_intruders(torch.zeros(6, 6), torch.from_numpy(_pretrained(6, 6, 2)), k=3)
    assert torch.isfinite(found.max_cos).all()


def test_scaling_shrinks_exactly_the_intruder_values() -> None:
    w0 = _pretrained(30, 24, 3)
    b, a = _lora(30, 24, 2, 8.0, 3)
    w = torch.from_numpy(w0 + b @ a)
    found, u, s, v = detect_intruders(torch.from_numpy(w0), w)
    assert found.count == 2
    fixed = scale_intruders(w, u, s, v, found.indices, lam=0.5)
    expected = s.clone()
    expected[found.indices] *= 0.5
    np.testing.assert_allclose(
        np.linalg.svd(fixed.numpy(), compute_uv=False), np.sort(expected.numpy())[::-1], rtol=1e-10
    )
    torch.testing.assert_close(scale_intruders(w, u, s, v, found.indices, lam=1.0), w)
    torch.testing.assert_close(scale_intruders(w, u, s, v, torch.tensor([], dtype=torch.long)), w)
    # factored: rank r + |I| keeps dW' exactly; rank r is the truncated SVD of dW' / s
    dw = torch.from_numpy(b @ a)
    dw_new = scale_intruders(dw, u, s, v, found.indices, lam=0.75)
    bt, at = torch.from_numpy(b), torch.from_numpy(a)
    b4, a4 = scale_intruders_factored(bt / 2, at, 2.0, u, s, v, found.indices, rank=4)
    torch.testing.assert_close(2.0 * b4 @ a4, dw_new)
    b2, a2 = scale_intruders_factored(bt / 2, at, 2.0, u, s, v, found.indices)
    uu, ss, vvt = np.linalg.svd(dw_new.numpy() / 2.0)
    torch.testing.assert_close(b2 @ a2, torch.from_numpy(uu[:, :2] * ss[:2] @ vvt[:2]))
    torch.testing.assert_close(b2.norm(dim=0), a2.norm(dim=1))  # sigma split evenly, as peft
    with pytest.raises(ConfigError, match="indices in"):
        scale_intruders(w, u, s, v, torch.tensor([99]))


# --- against peft itself ---------------------------------------------------------------------


class _Tiny(nn.Module):
    def __init__(self, m: int, n: int) -> None:
        super().__init__()
        self.proj = nn.Linear(n, m, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def _peft_model(w0: np.ndarray, b: np.ndarray, a: np.ndarray, alpha: int):  # type: ignore[no-untyped-def]
    from peft import LoraConfig, get_peft_model

    m, n = w0.shape
    config = LoraConfig(
        r=b.shape[1], lora_alpha=alpha, target_modules=["proj"], init_lora_weights=False
    )
    model = get_peft_model(_Tiny(m, n), config)
    layer = model.base_model.model.proj
    with torch.no_grad():
        layer.base_layer.weight.copy_(torch.from_numpy(w0))
        layer.lora_A["default"].weight.copy_(torch.from_numpy(a))
        layer.lora_B["default"].weight.copy_(torch.from_numpy(b))
    return model, layer


@pytest.mark.parametrize(
    ("seed", "strength", "k", "epsilon"),
    [(0, 6.0, 10, 0.5), (1, 2.0, 10, 0.5), (2, 0.05, 10, 0.5), (3, 6.0, 5, 0.3), (4, 1.5, 8, 0.6)],
)
def test_counts_and_mitigation_equal_peft(
    seed: int, strength: float, k: int, epsilon: float
) -> None:
    pytest.importorskip("peft")
    from peft.tuners.lora.intruders import reduce_intruder_dimension

    m, n, r, alpha = 48, 40, 4, 8
    w0 = _pretrained(m, n, seed).astype(np.float32)
    b, a = (x.astype(np.float32) for x in _lora(m, n, r, strength, seed))
    model, layer = _peft_model(w0, b, a, alpha)
    scaling = alpha / r
    logs: list[str] = []
    reduce_intruder_dimension(
        model, top_k=k, threshold_epsilon=epsilon, mitigation_lambda=0.75, logging_sink=logs.append
    )
    hit = re.search(r"Intruders: (\d+)", logs[0])
    peft_count = int(hit.group(1)) if hit else 0

    dw = scaling * torch.from_numpy(b).double() @ torch.from_numpy(a).double()
    w0_t = torch.from_numpy(w0)
    found, u, s, v = detect_intruders(w0_t, w0_t.double() + dw, k=k, epsilon=epsilon)
    assert found.count == peft_count

    b_new, a_new = scale_intruders_factored(
        torch.from_numpy(b), torch.from_numpy(a), scaling, u, s, v, found.indices, lam=0.75
    )
    peft_b = layer.lora_B["intruder_reduced"].weight.detach().double()
    peft_a = layer.lora_A["intruder_reduced"].weight.detach().double()
    scale_ref = float((peft_b @ peft_a).norm())
    torch.testing.assert_close(b_new @ a_new, peft_b @ peft_a, atol=2e-5 * scale_ref, rtol=0)


def test_seeded_cases_cover_both_outcomes() -> None:
    """The peft cases above are not vacuous: some have intruders and some have none."""
    counts = []
    for seed, strength in [(0, 6.0), (2, 0.05)]:
        w0 = _pretrained(48, 40, seed)
        b, a = _lora(48, 40, 4, strength, seed)
        counts.append(len(_numpy_intruders(w0, w0 + 2 * b @ a, 10, 0.5, "left")))
    assert counts[0] > 0 and counts[1] == 0
