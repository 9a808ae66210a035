"""StreamingCKA over batches equals linear CKA of the concatenated features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectral_probe.errors import ConfigError
from spectral_probe.similarity import DegenerateFeaturesError, StreamingCKA, linear_cka


def _layers(n: int, widths: list[int], seed: int, shift: float = 0.0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 4, generator=gen)
    return [
        torch.tanh(base @ torch.randn(4, w, generator=gen))
        + 0.3 * torch.randn(n, w, generator=gen)
        + shift
        for w in widths
    ]


@pytest.mark.parametrize("form", ["auto", "features", "gram"])
@pytest.mark.parametrize("debiased", [False, True])
def test_streaming_equals_in_memory_for_every_pair(form, debiased):
    xs, ys = _layers(96, [3, 17, 5], seed=0, shift=50.0), _layers(96, [8, 2], seed=1, shift=-20.0)
    acc = StreamingCKA(form=form)
    for start in range(0, 96, 12):
        acc.update([x[start : start + 12] for x in xs], [y[start : start + 12] for y in ys])
    assert acc.n == 96
    assert acc.buffering == (form == "gram")  # auto moved to the feature form once N > 17
    got = acc.cka(debiased)
    assert got.shape == (3, 2) and got.dtype == torch.float64
    for i, x in enumerate(xs):
        for j, y in enumerate(ys):
            ref = linear_cka(
                x.numpy().astype(np.float64), y.numpy().astype(np.float64), debiased, form="gram"
            )
            assert float(got[i, j]) == pytest.approx(ref, abs=1e-10)


def test_auto_form_keeps_rows_while_n_is_below_the_widths():
    xs, ys = _layers(20, [64], seed=2), _layers(20, [48], seed=3)
    acc = StreamingCKA()
    for start in range(0, 20, 5):
        acc.update([x[start : start + 5] for x in xs], [y[start : start + 5] for y in ys])
    assert acc.buffering
    for debiased in (False, True):
        feat = StreamingCKA(form="features")
        feat.update(xs, ys)
        assert float(acc.cka(debiased)[0, 0]) == pytest.approx(
            float(feat.cka(debiased)[0, 0]), abs=1e-10
        )


def test_memory_is_flat_in_n():
    """The feature-form state does not grow with the batches seen."""
    xs, ys = _layers(512, [6], seed=4), _layers(512, [5], seed=5)
    acc = StreamingCKA(form="features")

    def state_numel() -> int:
        tensors = [
            t for side in (*acc._xs, *acc._ys) for t in (side.s, side.gram, side.w, side.shift)
        ]
        tensors += [t for pair in acc._pairs.values() for t in pair]
        return sum(t.numel() for t in tensors)

    acc.update([xs[0][:8]], [ys[0][:8]])
    first = state_numel()
    for start in range(8, 512, 8):
        acc.update([xs[0][start : start + 8]], [ys[0][start : start + 8]])
    assert state_numel() == first == (6 + 36 + 6 + 6) + (5 + 25 + 5 + 5) + (30 + 6 + 5)


def test_bad_batches_and_degenerate_layers():
    acc = StreamingCKA(["a"], ["b"])
    with pytest.raises(ConfigError, match="same rows"):
        acc.update([torch.ones(4, 2)], [torch.ones(3, 2)])
    acc.update([torch.randn(4, 2)], [torch.full((4, 3), 7.0)])
    with pytest.raises(ConfigError, match="widths"):
        acc.update([torch.randn(4, 3)], [torch.randn(4, 3)])
    with pytest.raises(ConfigError, match=r"\(b, d\)"):
        acc.update([torch.randn(4)], [torch.randn(4, 3)])
    acc.update([torch.randn(4, 2)], [torch.full((4, 3), 7.0)])
    with pytest.raises(DegenerateFeaturesError, match="features of b .*constant"):
        acc.cka()
    empty = StreamingCKA()
    with pytest.raises(DegenerateFeaturesError, match="N = 0"):
        empty.cka()
    small = StreamingCKA(form="features")
    small.update([torch.randn(3, 2)], [torch.randn(3, 2)])
    with pytest.raises(DegenerateFeaturesError, match="at least 4 samples for debiased"):
        small.cka(debiased=True)
    with pytest.raises(ConfigError, match="form"):
        StreamingCKA(form="fast")  # type: ignore[arg-type]
