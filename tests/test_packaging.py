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


#: Modules without a mirror test file by design: a package's ``__init__`` (re-exports) and
#: private helpers, tested through the public module that uses them.
UNMIRRORED_BY_DESIGN: frozenset[str] = frozenset(
    {
        "spectral_probe/__init__.py",
        "spectral_probe/_extras.py",
        "spectral_probe/_seed.py",
        "spectral_probe/_torchvision.py",
        "spectral_probe/analysis/__init__.py",
        "spectral_probe/analysis/_layers.py",
        "spectral_probe/analysis/_resume.py",
        "spectral_probe/analysis/_spectra.py",
        "spectral_probe/analysis/_weight_tables.py",
        "spectral_probe/data/__init__.py",
        "spectral_probe/data/_layout.py",
        "spectral_probe/data/_mnist_family.py",
        "spectral_probe/extract/__init__.py",
        "spectral_probe/integrations/__init__.py",
        "spectral_probe/models/__init__.py",
        "spectral_probe/plotting/__init__.py",
        "spectral_probe/regularizers/__init__.py",
        "spectral_probe/regularizers/_ablation.py",
        "spectral_probe/regularizers/_base.py",
        "spectral_probe/regularizers/_gram.py",
        "spectral_probe/report/__init__.py",
        "spectral_probe/similarity/__init__.py",
        "spectral_probe/similarity/_checks.py",
        "spectral_probe/similarity/_hsic.py",
        "spectral_probe/sources/__init__.py",
        "spectral_probe/sources/_base.py",
        "spectral_probe/sources/_names.py",
        "spectral_probe/spectral/__init__.py",
        "spectral_probe/training/__init__.py",
        "spectral_probe/training/_checks.py",
        "spectral_probe/transferability/__init__.py",
        "spectral_probe/transferability/_centred.py",
        "spectral_probe/transferability/_check.py",
        "spectral_probe/transferability/_registry.py",
        "spectral_probe/transferability/_source.py",
        "spectral_probe/validation/__init__.py",
        "cli/__init__.py",
        "cli/_compare_options.py",
        "cli/_compare_print.py",
        "cli/_training.py",
    }
)
#: Public modules whose tests still live under other names (e.g. ``tests/cli/test_weights.py``
#: for ``cli/compare_weights.py`` and ``cli/layers.py``) or inside other modules' tests. Only
#: shrinks: move or split their tests into ``tests/<package>/test_<module>.py``.
NOT_YET_MIRRORED: frozenset[str] = frozenset(
    {
        "spectral_probe/errors.py",
        "spectral_probe/analysis/feature_tables.py",
        "spectral_probe/analysis/fine_tunes.py",
        "spectral_probe/analysis/mitigate.py",
        "spectral_probe/analysis/truncate.py",
        "spectral_probe/models/loaded.py",
        "spectral_probe/models/mlp.py",
        "spectral_probe/models/timm_source.py",
        "spectral_probe/models/torchvision_source.py",
        "spectral_probe/plotting/weight_figures.py",
        "spectral_probe/plotting/what_changed.py",
        "spectral_probe/report/demo.py",
        "spectral_probe/report/evidence.py",
        "spectral_probe/report/figures.py",
        "spectral_probe/report/outdir.py",
        "spectral_probe/report/pilot.py",
        "spectral_probe/report/render.py",
        "spectral_probe/report/reproduction_data.py",
        "spectral_probe/report/reproduction_figures.py",
        "spectral_probe/report/reproduction_spectra.py",
        "spectral_probe/report/settings.py",
        "spectral_probe/sources/directory.py",
        "spectral_probe/sources/files.py",
        "spectral_probe/training/aggregate.py",
        "spectral_probe/training/distributed.py",
        "spectral_probe/training/evaluate.py",
        "spectral_probe/training/hooks.py",
        "spectral_probe/training/laser.py",
        "spectral_probe/training/laser_cell.py",
        "spectral_probe/training/optim.py",
        "spectral_probe/training/presets.py",
        "spectral_probe/training/rundir.py",
        "spectral_probe/training/scenarios.py",
        "spectral_probe/training/spectra.py",
        "spectral_probe/training/state.py",
        "spectral_probe/training/tasks.py",
        "spectral_probe/validation/suites.py",
        "spectral_probe/validation/summary.py",
        "spectral_probe/validation/validate.py",
        "cli/laser_sweep.py",
        "cli/main.py",
        "cli/plot_runs.py",
        "cli/sweep.py",
        "cli/sweep_table.py",
    }
)


def _mirror(path: Path) -> Path:
    """``tests/<package>/test_<module>.py`` for ``spectral_probe/<package>/<module>.py`` (and
    ``tests/cli/...`` for ``cli/``); a leading ``_`` of the module is dropped."""
    rel = path.relative_to(ROOT)
    parts = list(rel.parts[1:-1]) if rel.parts[0] == "spectral_probe" else list(rel.parts[:-1])
    return ROOT / "tests" / Path(*parts, f"test_{path.stem.lstrip('_')}.py")


def _unmirrored() -> set[str]:
    modules = [p for p in _python_files("spectral_probe", "cli") if "__pycache__" not in p.parts]
    return {p.relative_to(ROOT).as_posix() for p in modules if not _mirror(p).is_file()}


def test_tests_mirror_the_package_file_by_file():
    """Every module has ``tests/<package>/test_<module>.py`` or is listed, with its reason."""
    missing = sorted(_unmirrored() - UNMIRRORED_BY_DESIGN - NOT_YET_MIRRORED)
    assert not missing, "modules without a mirror test file (add one, or list it):\n" + "\n".join(
        f"  {m} -> {_mirror(ROOT / m).relative_to(ROOT)}" for m in missing
    )


def test_mirror_allow_lists_only_shrink():
    """A listed module that now has its mirror (or no longer exists) leaves the list."""
    stale = sorted((UNMIRRORED_BY_DESIGN | NOT_YET_MIRRORED) - _unmirrored())
    assert not stale, "listed but mirrored or gone (remove from the list): " + ", ".join(stale)
