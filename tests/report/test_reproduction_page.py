"""docs/reproduction.md is regenerated from its committed data file: the page, its numbers.json
and the data must not drift apart. Regenerate with

    spectral-probe reproduce-page --from docs/reproduction/data/reproduce-quick.json --out docs
"""

from __future__ import annotations

import json
from pathlib import Path

from spectral_probe._io import to_jsonable
from spectral_probe.report.reproduction import reproduction_from_data
from spectral_probe.report.reproduction_data import ReproductionData
from spectral_probe.report.reproduction_page import figure_files, render_reproduction_markdown

ROOT = Path(__file__).resolve().parents[2]
DATA = "docs/reproduction/data/reproduce-quick.json"
COMMAND = f"spectral-probe reproduce-page --from {DATA} --out docs"


def _rep():
    return reproduction_from_data(ReproductionData.read(ROOT / DATA))


def test_the_committed_page_is_the_page_of_the_committed_data():
    rep = _rep()
    text = render_reproduction_markdown(
        rep,
        figure_files(rep),
        assets="reproduction",
        command=COMMAND,
        source="reproduction/data/reproduce-quick.json",
    )
    committed = (ROOT / "docs" / "reproduction.md").read_text(encoding="utf-8")
    assert text == committed, f"docs/reproduction.md drifted from {DATA}: run `{COMMAND}`"


def test_the_committed_numbers_and_figures_are_those_of_the_data():
    rep = _rep()
    numbers = json.loads((ROOT / "docs/reproduction/numbers.json").read_text(encoding="utf-8"))
    assert numbers == json.loads(json.dumps(to_jsonable(rep.to_dict())))
    for names in figure_files(rep).values():
        for name in names:
            assert (ROOT / "docs/reproduction" / name).is_file(), name


def test_the_data_file_is_small_and_holds_no_checkpoints():
    data = ROOT / DATA
    assert data.stat().st_size < 100_000
    d = ReproductionData.read(data)
    assert len(d.runs) > 0 and {"q_all", "q_tail", "error", "epochs"} <= set(d.runs.columns)
    assert not any(p.suffix in (".safetensors", ".pt", ".bin") for p in data.parent.iterdir())
