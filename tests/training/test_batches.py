"""Deterministic, shardable batch plans, seeded augmentation and the tensor ten-crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from spectral_probe.data import TensorImageTransform
from spectral_probe.errors import ConfigError, DataError
from spectral_probe.training import BatchPlan, TensorTenCrop
from spectral_probe.training.batches import eval_subset, seeded_rng


def test_epochs_are_permutations_and_drop_the_last_partial_batch():
    plan = BatchPlan(103, 10, seed=0)
    assert plan.per_epoch == 10
    epoch0 = np.concatenate([plan.global_indices(t) for t in range(10)])
    assert len(set(epoch0.tolist())) == 100 and epoch0.max() < 103
    assert plan.epoch_of(10) == 1
    assert not np.array_equal(plan.global_indices(0), plan.global_indices(10))


def test_order_depends_only_on_seed_and_iteration():
    a, b = BatchPlan(50, 8, seed=3), BatchPlan(50, 8, seed=3)
    for t in (17, 0, 5, 17):  # any access order, as after a resume
        assert np.array_equal(a.global_indices(t), b.global_indices(t))
    assert not np.array_equal(BatchPlan(50, 8, seed=4).global_indices(0), a.global_indices(0))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(8, 200), per_rank=st.integers(1, 8), world=st.integers(1, 4), t=st.integers(0, 50)
)
def test_rank_shards_tile_the_global_batch(n, per_rank, world, t):
    batch = per_rank * world
    if n < batch:
        return
    plans = [BatchPlan(n, batch, seed=1, rank=r, world=world) for r in range(world)]
    shards = np.concatenate([p.indices(t) for p in plans])
    assert np.array_equal(shards, plans[0].global_indices(t))
    assert len({p.augment_seed(t) for p in plans}) == world


def test_plan_errors():
    with pytest.raises(DataError, match="at least batch_size = 48 training images, found 20"):
        BatchPlan(20, 48, seed=0)
    with pytest.raises(ConfigError, match="divisible by the 2 DDP processes"):
        BatchPlan(20, 5, seed=0, world=2)


def test_seeded_rng_is_reproducible_and_restores_the_global_state():
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    with seeded_rng(42):
        a = torch.rand(3)
    with seeded_rng(42):
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(1), before)  # the global stream is untouched


def test_eval_subset_is_fixed_and_sharded():
    full = eval_subset(100, None)
    assert np.array_equal(full, np.arange(100))
    capped = eval_subset(100, 30)
    assert len(capped) == 30 and np.array_equal(capped, eval_subset(100, 30))
    shards = [eval_subset(100, 30, rank=r, world=3) for r in range(3)]
    assert np.array_equal(np.sort(np.concatenate(shards)), capped)


def test_tensor_ten_crop_matches_torchvision():
    from torchvision.transforms import v2

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=gen)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    out = TensorTenCrop(24, 32, mean, std)(images)
    assert out.shape == (2, 10, 3, 24, 24)
    resized = TensorImageTransform(32, mean, std)(images)
    for i in range(2):
        want = torch.stack(list(v2.TenCrop(24)(resized[i])))
        torch.testing.assert_close(out[i], want)
    assert TensorTenCrop(24, 32, mean, std)(images[0]).shape == (10, 3, 24, 24)
