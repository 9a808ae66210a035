"""make_loader: the batched fast path gives what the per-sample path gives."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from spectral_probe.data import (
    TensorImageDataset,
    TensorImageTransform,
    TextDataset,
    make_loader,
    sample_per_class,
)
from spectral_probe.errors import DataError


def _dataset() -> TensorImageDataset:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (23, 1, 10, 10), dtype=torch.uint8, generator=gen)
    return TensorImageDataset(
        images, [i % 4 for i in range(23)], list("abcd"), name="toy", split="train"
    )


def test_fast_path_equals_per_sample_path() -> None:
    ds = _dataset().with_transform(TensorImageTransform(16))
    fast = list(make_loader(ds, 5))
    slow = list(DataLoader(ds, batch_size=5))
    assert [x.shape[0] for x, _ in fast] == [5, 5, 5, 5, 3]
    for (xf, yf), (xs, ys) in zip(fast, slow, strict=True):
        assert torch.allclose(xf, xs, atol=1e-5) and torch.equal(yf, ys)
        assert xf.shape[1:] == (3, 16, 16) and yf.dtype == torch.int64


def test_shuffle_is_seeded_and_covers_each_sample_once() -> None:
    ds = _dataset()
    order = lambda seed: torch.cat([y for _, y in make_loader(ds, 4, shuffle=True, seed=seed)])  # noqa: E731
    a = torch.cat([x.flatten(1) for x, _ in make_loader(ds, 4, shuffle=True, seed=3)])
    assert a.shape[0] == 23 and torch.unique(a, dim=0).shape[0] == 23
    assert torch.equal(order(3), order(3))
    assert len(list(make_loader(ds, 4, drop_last=True))) == 5


def test_subset_keeps_the_fast_path() -> None:
    ds = _dataset()
    idx = sample_per_class(ds.targets, 2, seed=0)
    sub = ds.subset(idx)
    assert sub.supports_batch_index
    ((x, y),) = list(make_loader(sub, 100))
    assert torch.equal(x, ds.images[torch.as_tensor(idx)]) and y.tolist() == [
        ds.targets[i] for i in idx
    ]


def test_text_dataset_with_collate() -> None:
    ds = TextDataset(
        [("a", "b"), ("c", "d"), ("e", "f")], [0, 1, 0], ["x", "y"], name="t", split="train"
    )
    batches = list(
        make_loader(ds, 2, collate_fn=lambda items: ([s for s, _ in items], [y for _, y in items]))
    )
    assert batches[0] == ([("a", "b"), ("c", "d")], [0, 1])


def test_bad_batch_size() -> None:
    with pytest.raises(DataError, match="expected a positive integer batch size, found 0"):
        make_loader(_dataset(), 0)


def test_per_image_transform_falls_back_to_per_sample_loading() -> None:
    from spectral_probe.data import paper_train_transform

    ds = _dataset().with_transform(paper_train_transform(16, 18))
    assert not ds.supports_batch_index and not ds.subset([0, 1]).supports_batch_index
    torch.manual_seed(0)
    x, y = next(iter(make_loader(ds, 8)))
    assert x.shape == (8, 3, 16, 16) and y.tolist() == ds.targets[:8]
    assert _dataset().supports_batch_index
    assert _dataset().with_transform(TensorImageTransform(8)).supports_batch_index


def test_worker_processes() -> None:
    ds = _dataset().with_transform(TensorImageTransform(12))
    batches = list(make_loader(ds, 10, num_workers=1))
    assert [x.shape[0] for x, _ in batches] == [10, 10, 3]
