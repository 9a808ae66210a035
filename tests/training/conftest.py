"""Fixtures of the training tests: the tiny model source and small digit configs."""

from __future__ import annotations

import pytest

from spectral_probe.training import FinetuneConfig

from . import _tiny  # noqa: F401  (registers the tiny model source)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread: None) -> None:
    """Tiny models run fastest single-threaded (and the machine is shared)."""


def tiny_config(**changes) -> FinetuneConfig:
    """A digits run of the tiny CNN at 8 px that takes a second or two."""
    base = dict(
        model="tiny:cnn",
        data="digits",
        method="l2",
        rate="100%",
        seed=0,
        preset="paper",
        batch_size=32,
        iterations=40,
        lr_step=30,
        image_size=8,
        resize=8,
        ten_crop=False,
        augment="none",
        lr=0.1,
        log_every=10,
        checkpoint_every=20,
        eval_batch_size=256,
    )
    base.update(changes)
    return FinetuneConfig(**base)


@pytest.fixture
def make_config():
    return tiny_config
