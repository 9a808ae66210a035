"""A tiny report built once per session (tiny CNN on digits, a few iterations)."""

from __future__ import annotations

import pytest
import torch
import training._tiny  # noqa: F401  (registers the test-only ``tiny`` model source)

from spectral_probe.report import ReportSettings, build_report, render_report
from spectral_probe.report.outdir import prepare_output


def tiny_settings(**changes) -> ReportSettings:
    base = dict(
        model="tiny:cnn",
        data="digits",
        methods=("l2", "l2+bss", "l2-sp"),
        rates=("50%", "100%"),
        seeds=(0, 1),
        preset="demo",
        iterations=12,
        image_size=8,
        val="20%",
        eval_max=200,
        spectrum_batches=2,
        device="cpu",
        scaled_down=("A test-sized report.",),
    )
    base.update(changes)
    return ReportSettings(**base)


@pytest.fixture(scope="session")
def tiny_report(tmp_path_factory: pytest.TempPathFactory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("report")
    settings = tiny_settings()
    prepare_output(out, settings)
    report = build_report(settings, out)
    paths = render_report(report, out)
    return report, paths, out
