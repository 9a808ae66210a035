"""Project-wide invariants: package list, import boundaries, safe loading, module size."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in (ROOT / d).rglob("*.py")]


def test_every_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "spectral_probe").rglob("__init__.py")
    } | {"spectral_probe_cli"}
    assert found == listed


def test_library_never_imports_typer():
    code = (
        "import sys, pkgutil, importlib, spectral_probe\n"
        "for m in pkgutil.walk_packages(spectral_probe.__path__, 'spectral_probe.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('typer' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_no_unsafe_loading_or_deprecated_svd():
    for path in _python_files("spectral_probe", "cli"):
        text = path.read_text()
        assert not re.search(r"torch\.svd\(", text), f"deprecated torch.svd in {path}"
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (
                f"torch.load without weights_only=True in {path}: {call}"
            )
        assert "plt.show(" not in text, f"plt.show() in library code: {path}"


def test_modules_stay_small():
    big = {
        str(p.relative_to(ROOT)): n
        for p in _python_files("spectral_probe", "cli")
        if (n := len(p.read_text().splitlines())) > 700
    }
    assert not big, f"modules over 700 lines: {big}"


def test_ci_calls_the_readme_test_command():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert readme.index("make demo") < readme.index("make test") < readme.index("## What it does")


def test_no_unused_imports_or_undefined_names():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.skip("ruff not installed (pip install 'spectral-probe[dev]')")
    out = subprocess.run(
        [
            ruff,
            "check",
            "--select",
            "F,E9",
            "--output-format",
            "concise",
            "spectral_probe",
            "cli",
            "tests",
            "bench",
            "scripts",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout[-2000:]
