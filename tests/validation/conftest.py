"""A test-only tiny suite (tiny CNN on digits, a few iterations) validated once per session."""

from __future__ import annotations

import pytest
import torch
import training._tiny  # noqa: F401  (registers the test-only ``tiny`` model source)

from spectral_probe.validation import Suite, Task, validate


def tiny_suite() -> Suite:
    return Suite(
        name="tiny",
        tasks=(Task("tiny:cnn", "digits", "50%"), Task("tiny:mlp", "digits", "50%")),
        methods=("l2", "l2+bss", "l2-sp"),
        preset="demo",
        image_size=8,
        pilot_iterations=6,
        pilot_seeds=(0, 1),
        val="20%",
        pilot_eval_max=100,
        full_iterations=8,
        full_seeds=(0,),
        full_eval_max=100,
        spectrum_batches=1,
    )


@pytest.fixture(scope="session")
def tiny_validation(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("validation")
    result = validate(tiny_suite(), out, device="cpu")
    return result, out
