"""Import hygiene: importing the package or the CLI pulls in none of the heavy optional libraries.

Each check runs in a fresh interpreter, so modules imported by other tests do not count.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("matplotlib", "seaborn", "pandas", "torchvision")

_CHECK = """
import json, sys
{statement}
heavy = {heavy!r}
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))))
"""


def _heavy_after(statement: str) -> list[str]:
    code = _CHECK.format(statement=statement, heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "statement",
    [
        "import spectral_probe",
        "import spectral_probe_cli.main",
        # what `spectral-probe --help` runs: the app is built and its help printed
        "from spectral_probe_cli.main import app\n"
        "try:\n    app(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass",
    ],
    ids=["package", "cli-module", "cli-help"],
)
def test_importing_pulls_in_no_heavy_library(statement: str) -> None:
    assert _heavy_after(statement) == []


def test_the_check_sees_a_heavy_import() -> None:
    """The probe itself works: importing pandas is reported."""
    assert _heavy_after("import pandas") == ["pandas"]
