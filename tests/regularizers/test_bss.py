"""BSS against NumPy's SVD, its gradients, and its failure modes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.errors import ConfigError
from spectral_probe.regularizers import BSS, StepContext, bss_penalty
from spectral_probe.regularizers.bss import _SmallestEigenvalueSum


def numpy_smallest_sq(f: torch.Tensor, k: int) -> float:
    s = np.linalg.svd(f.detach().double().numpy(), compute_uv=False)
    return float(np.sort(s**2)[:k].sum())


def test_hand_computed_diagonal() -> None:
    f = torch.tensor([[3.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    assert bss_penalty(f, 1).item() == pytest.approx(1.0)
    assert bss_penalty(f, 2).item() == pytest.approx(5.0)


@pytest.mark.parametrize("shape", [(48, 2048), (8, 5), (16, 16)])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("precision", ["auto", "float64", "float32"])
def test_equals_numpy_svd(shape: tuple[int, int], k: int, precision: str) -> None:
    g = torch.Generator().manual_seed(1)
    f = torch.relu(torch.randn(*shape, generator=g) + 0.3)
    got = bss_penalty(f, k, precision=precision).item()
    want = numpy_smallest_sq(f, k)
    smax2 = float(np.linalg.norm(f.double().numpy(), 2) ** 2)
    tol = 1e-12 if precision == "float64" else 1e-6
    assert abs(got - want) <= tol * smax2 + 1e-6 * want


def test_auto_precision_falls_back_to_float64_on_ill_conditioned_batches() -> None:
    g = torch.Generator().manual_seed(2)
    benign = torch.relu(torch.randn(48, 256, generator=g) * 0.3 + 0.4)
    # ordinary batch: the float32 Gram is used (bit-identical), within the documented 2e-4
    assert bss_penalty(benign, 2).item() == bss_penalty(benign, 2, precision="float32").item()
    assert bss_penalty(benign, 2).item() == pytest.approx(numpy_smallest_sq(benign, 2), rel=2e-4)
    # a duplicated sample and a near-duplicate: sigma_min^2 far below the float32 noise floor
    ill = benign.clone()
    ill[1] = ill[0]
    ill[3] = ill[2] + 1e-4 * torch.randn(256, generator=g)
    want = numpy_smallest_sq(ill, 2)
    assert bss_penalty(ill, 2).item() == pytest.approx(want, rel=1e-4)
    assert bss_penalty(ill, 2, precision="float32").item() != pytest.approx(want, rel=1e-2)


@settings(max_examples=30, deadline=None)
@given(
    b=st.integers(2, 12),
    d=st.integers(1, 12),
    k=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_property_matches_numpy_and_gradient_of_rayleigh(b: int, d: int, k: int, seed: int) -> None:
    if k >= b or k > d:
        with pytest.raises(ConfigError):
            bss_penalty(torch.zeros(b, d), k)
        return
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(b, d, generator=g, dtype=torch.float64, requires_grad=True)
    value = bss_penalty(f, k)
    assert value.item() == pytest.approx(numpy_smallest_sq(f, k), rel=1e-9, abs=1e-12)
    value.backward()
    assert torch.isfinite(f.grad).all()
    # the gradient of a sum of eigenvalues: 2 U_k U_k^T F (left) with NumPy's singular vectors
    u, s, vt = np.linalg.svd(f.detach().numpy(), full_matrices=False)
    order = np.argsort(s)[:k]
    sorted_s = np.sort(s)
    if k < len(s) and sorted_s[k] - sorted_s[k - 1] > 1e-6:  # unique only with a gap
        uk, vk = u[:, order], vt[order].T
        want = 2 * (uk * s[order]) @ vk.T
        np.testing.assert_allclose(f.grad.numpy(), want, atol=1e-8)


@pytest.mark.parametrize("shape", [(5, 7), (7, 4)])
def test_gradcheck_float64(shape: tuple[int, int]) -> None:
    f = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: bss_penalty(x, 2), (f,))


def test_eigh_backend_matches_plain_autograd() -> None:
    f = torch.randn(6, 9, dtype=torch.float64, requires_grad=True)
    _SmallestEigenvalueSum.apply(f, 2, "float64", 1.0).backward()
    ours = f.grad.clone()
    f.grad = None
    torch.linalg.eigvalsh(f @ f.T)[:2].sum().backward()
    torch.testing.assert_close(ours, f.grad)


@pytest.mark.parametrize(
    "case", ["duplicated-rows", "zero-rows", "rank-1", "all-zero", "tall-repeated"]
)
def test_finite_gradients_with_repeated_or_vanishing_singular_values(case: str) -> None:
    g = torch.Generator().manual_seed(0)
    f = torch.randn(8, 16, generator=g)
    if case == "duplicated-rows":
        f[1] = f[0]
        f[2] = f[0]
    elif case == "zero-rows":
        f[3:6] = 0
    elif case == "rank-1":
        f = torch.outer(torch.randn(8, generator=g), torch.randn(16, generator=g))
    elif case == "all-zero":
        f = torch.zeros(8, 16)
    else:
        f = torch.randn(16, 4, generator=g).repeat(1, 2)  # d < b with equal columns
    f.requires_grad_(True)
    for k in (1, 3):
        f.grad = None
        value = bss_penalty(f, k)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(f.grad).all()
        want = numpy_smallest_sq(f, k)
        assert value.item() == pytest.approx(want, rel=1e-6, abs=1e-9 * (1 + f.norm().item() ** 2))


def test_half_features_are_upcast() -> None:
    f = torch.randn(6, 10).to(torch.bfloat16).requires_grad_(True)
    value = bss_penalty(f, 1)
    assert value.dtype == torch.float32
    value.backward()
    assert f.grad.dtype == torch.bfloat16 and torch.isfinite(f.grad.float()).all()
    assert value.item() == pytest.approx(numpy_smallest_sq(f.float(), 1), rel=1e-5)


def test_trailing_dimensions_are_flattened() -> None:
    f = torch.randn(6, 2, 3, 1)
    assert bss_penalty(f, 1).item() == pytest.approx(bss_penalty(f.reshape(6, 6), 1).item())


def test_batch_not_larger_than_k_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="< batch size"):
        bss_penalty(torch.randn(2, 10), 2)
    with pytest.raises(ConfigError, match="shape"):
        bss_penalty(torch.randn(10), 1)


def test_module_scales_by_eta_and_needs_features() -> None:
    model = torch.nn.Linear(10, 3)
    f = torch.randn(6, 10)
    ctx = StepContext(model, "", f, torch.zeros(6), model(f), f)
    reg = BSS(eta=0.5, k=2)
    assert reg.penalty(ctx).item() == pytest.approx(0.5 * numpy_smallest_sq(f, 2), rel=1e-6)
    ctx.features = None
    with pytest.raises(ConfigError, match="features"):
        reg.penalty(ctx)
    with pytest.raises(ConfigError):
        BSS(precision="float16")
    with pytest.raises(ConfigError):
        BSS(k=0)
