"""plotting.runs reads the run labels that training writes."""

from __future__ import annotations

from spectral_probe.plotting.runs import RUN_LABEL_SEP
from spectral_probe.training.spectra import LABEL_SEP


def test_run_label_separator_matches_training() -> None:
    # plotting sits below training in the layers, so it keeps its own copy of the separator
    assert RUN_LABEL_SEP == LABEL_SEP
