"""The notebooks run end to end (small settings injected after their parameters cell),
are committed without outputs, and import only the public API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
PUBLIC = {
    "spectral_probe.analysis",
    "spectral_probe.data",
    "spectral_probe.extract",
    "spectral_probe.models",
    "spectral_probe.plotting",
    "spectral_probe.similarity",
    "spectral_probe.spectral",
    "spectral_probe.training",
    "spectral_probe.errors",
}

# Tiny settings: real model and real data (digits instead of the 60k Fashion-MNIST images), a
# few batches at a small resolution.
SMALL = {
    "feature_spectrum.ipynb": {
        "DATA": "digits",
        "BATCH_SIZE": 12,
        "IMAGE_SIZE": 32,
        "MAX_BATCHES": 2,
        "LAYERS": ["blocks.2", "penultimate"],
        "RATES": ["30%", "100%"],
        "DEVICE": "cpu",
    },
    "feature_similarity.ipynb": {
        "DATA": "digits",
        "RATE": "30%",
        "ITERATIONS": 4,
        "IMAGE_SIZE": 32,
        "BATCH_SIZE": 12,
        "MAX_BATCHES": 6,
        "SAMPLE": 72,
        "DEVICE": "cpu",
    },
    "weight_angles.ipynb": {
        "INCLUDE": r"^(conv_stem|blocks\.0\.0\.conv_dw|blocks\.6\.0\.conv_pw)$",
        "DEVICE": "cpu",
    },
}


def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_every_notebook_has_small_settings():
    assert sorted(p.name for p in _notebooks()) == sorted(SMALL)


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_committed_clean_and_public_api_only(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), (
        "commit notebooks without outputs"
    )
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and code[0] is params[0], "the first code cell holds the settings"
    for cell in code:
        for module in re.findall(
            r"^\s*(?:from|import)\s+(spectral_probe[\w.]*)", cell.source, re.M
        ):
            assert module in PUBLIC, f"{path.name} imports {module}, not a public package"


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # shared CPUs: see tests/extract/test_features.py
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    nb = nbformat.read(path, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    overrides = "\n".join(f"{k} = {v!r}" for k, v in SMALL[path.name].items())
    nb.cells.insert(code[0] + 1, nbformat.v4.new_code_cell(overrides))
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    figures = [
        c
        for c in nb.cells
        if c.cell_type == "code" and c.source.strip().splitlines()[-1].startswith("plot_")
    ]
    assert len(figures) >= 3
    for cell in figures:
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), (
            f"no figure shown by {cell.source!r}"
        )
