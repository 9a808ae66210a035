"""digits: scikit-learn's 8x8 digits with a fixed stratified split."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits

from spectral_probe.data import TensorImageDataset, load_dataset


def test_fixed_stratified_split_covers_everything_once() -> None:
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert isinstance(train, TensorImageDataset)
    assert len(train) + len(test) == 1797
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    counts = np.bincount(load_digits().target)
    assert test.class_counts().tolist() == np.ceil(counts * 0.25).astype(int).tolist()
    # every sklearn image appears exactly once across the two splits, with its label
    ref = load_digits()
    ref_keys = sorted(
        (np.rint(img * 255 / 16).astype(np.uint8).tobytes(), int(t))
        for img, t in zip(ref.images, ref.target, strict=True)
    )
    ours = sorted(
        (ds.images[i, 0].numpy().tobytes(), ds.targets[i])
        for ds in (train, test)
        for i in range(len(ds))
    )
    assert ours == ref_keys
    again = load_dataset("digits", "test")
    assert torch.equal(again.images, test.images) and again.targets == test.targets
    assert train.images.max() == 255
