"""The CUDA paths: BSS/TSVD against NumPy, AMP, DELTA's ablation, one step of every method."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spectral_probe.regularizers import (
    bss_penalty,
    build_regularizer,
    list_regularizers,
    truncate_spectrum,
)
from spectral_probe.regularizers._ablation import ablation_loss_increase
from spectral_probe.spectral import eigen

from ._models import make_batches, step, tiny_net
from .test_common import _quick
from .test_delta import per_channel_loop

pytestmark = pytest.mark.gpu
CUDA = torch.device("cuda")


@pytest.mark.parametrize("max_n", [0, 256])  # the GPU solver, or LAPACK on the host
@pytest.mark.parametrize("precision", ["auto", "float32", "float64"])
def test_bss_matches_numpy_on_cuda(precision: str, max_n: int, monkeypatch) -> None:
    monkeypatch.setattr(eigen, "CUDA_EIGH_ON_CPU_MAX_N", max_n)
    f = torch.relu(torch.randn(48, 2048, generator=torch.Generator().manual_seed(0)) + 0.3)
    f[1] = f[0]  # a zero singular value
    want = np.sort(np.linalg.svd(f.double().numpy(), compute_uv=False) ** 2)[:2].sum()
    x = f.to(CUDA).requires_grad_(True)
    got = bss_penalty(x, 2, precision=precision)
    got.backward()
    smax2 = float(np.linalg.norm(f.double().numpy(), 2) ** 2)
    tol = 1e-6 if precision == "float32" else 1e-12
    assert abs(got.item() - want) <= tol * smax2 + 1e-6 * want
    assert torch.isfinite(x.grad).all()


def test_bss_under_autocast() -> None:
    x = torch.randn(32, 512, device=CUDA, requires_grad=True)
    w = torch.randn(512, 512, device=CUDA)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        f = x @ w
        value = bss_penalty(f, 1)
    assert f.dtype == torch.bfloat16 and value.dtype == torch.float32
    value.backward()
    assert torch.isfinite(x.grad).all()


def test_tsvd_on_cuda_matches_cpu() -> None:
    f = torch.randn(16, 64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(truncate_spectrum(f.to(CUDA), 4).cpu(), truncate_spectrum(f, 4))


def test_ablation_on_cuda_matches_loop() -> None:
    net = tiny_net().eval().to(CUDA)
    batches = [(x.to(CUDA), y.to(CUDA)) for x, y in make_batches(2)]
    got = ablation_loss_increase(net, "layer1.conv2", batches, max_elements=700)
    torch.testing.assert_close(
        got, per_channel_loop(net, "layer1.conv2", batches), atol=1e-5, rtol=1e-4
    )


@pytest.mark.parametrize("spec", [i.name for i in list_regularizers()] + ["delta+bss"])
def test_one_step_on_cuda(spec: str) -> None:
    model = tiny_net().to(CUDA)
    batches = [(x.to(CUDA), y.to(CUDA)) for x, y in make_batches(2)]
    reg = build_regularizer(spec, **_quick(spec))
    reg.prepare(model, head="fc", loader=batches)
    model.train()
    loss, parts = step(model, reg, *batches[0])
    loss.backward()
    assert math.isfinite(loss.item()) and all(math.isfinite(v.item()) for v in parts.values())
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    assert all(b.device.type == "cuda" for b in reg.buffers())
