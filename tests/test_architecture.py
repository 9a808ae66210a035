"""The package's import graph, read from the source with ``ast``: layers, cycles, decompositions.

What counts as an import (the rule documented in docs/architecture.md): every import,
wherever it is: at module level, inside functions (a function-level import that closes a
loop only moves the failure from import time to call time) and under ``if TYPE_CHECKING:``
(a type named from another package is a dependency on it). The one exception is the cycle
rule between the modules *of one package*: an annotation there may name a collaborator's type
under ``TYPE_CHECKING`` (a hook annotates the ``Trainer`` that calls it), because that import
never runs and the two modules already belong together.

Rules:

1. No cycle among the packages (every import counts).
2. No cycle among the modules of ``spectral_probe`` and the CLI (executed imports).
3. A module imports only its own layer or lower ones (:data:`LAYERS`; every import counts). A
   new package must be added to :data:`LAYERS` (and to the diagram in docs/architecture.md)
   before it can land.
4. No module imports another package's private (``_``-prefixed) module; the package root's
   plumbing (``spectral_probe._io``, ``_checks``, ...: layer 0) is there for every package.
   Known exceptions are listed in :data:`ALLOWED_PRIVATE`, which only shrinks.
5. Matrix decompositions (``torch.linalg.svd``, ``eigh``, ..., ``scipy.linalg``,
   ``np.linalg``) are called in ``spectral_probe/spectral/`` only.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Top-level import names and their source folders.
SOURCES = {"spectral_probe": ROOT / "spectral_probe", "spectral_probe_cli": ROOT / "cli"}

#: Layer of every package (and top-level module) of the library. An import may go to the same
#: layer or a lower one. Keep in step with the diagram in docs/architecture.md.
LAYERS: dict[str, int] = {
    # 0: the package root and its plumbing: errors, atomic files, seeds, allocator, extras,
    # the torchvision import
    "spectral_probe": 0,
    "spectral_probe._alloc": 0,
    "spectral_probe._checks": 0,
    "spectral_probe._extras": 0,
    "spectral_probe._io": 0,
    "spectral_probe._results": 0,
    "spectral_probe._jobs": 0,
    "spectral_probe._seed": 0,
    "spectral_probe._torchvision": 0,
    "spectral_probe.errors": 0,
    # 1: pure maths on tensors; every matrix decomposition
    "spectral_probe.spectral": 1,
    # 2: inputs: model specs, dataset specs, weights and features out of a model
    "spectral_probe.data": 2,
    "spectral_probe.extract": 2,
    "spectral_probe.models": 2,
    "spectral_probe.sources": 2,
    # 3: what is computed from the inputs, and its figures
    "spectral_probe.analysis": 3,
    "spectral_probe.plotting": 3,
    "spectral_probe.regularizers": 3,
    "spectral_probe.similarity": 3,
    "spectral_probe.transferability": 3,
    # 4: the fine-tuning engine, its tasks, sweeps and tables
    "spectral_probe.training": 4,
    # 5: what is built from runs and analyses
    "spectral_probe.report": 5,
    "spectral_probe.validation": 5,
    # 6: adapters to other tools' training loops and trackers
    "spectral_probe.integrations": 6,
    # 7: the command line
    "spectral_probe_cli": 7,
}

#: Import cycles that are known and accepted, with the reason. Keep it short (now empty: a
#: checkpoint's sidecar and ``textcls:`` resolve the specs they name with the registry's
#: ``load_model``, and the checkpoint reader registers itself there).
ACCEPTED_CYCLES: list[set[str]] = []

#: Imports of another package's private module still in the code, each with its owner's plan.
#: Remove an entry when its import goes (a test fails while a listed import no longer exists).
ALLOWED_PRIVATE: set[tuple[str, str]] = set()

#: ``linalg`` functions that decompose a matrix (or solve through one).
DECOMPOSITIONS = {
    "svd", "svdvals", "eig", "eigh", "eigvals", "eigvalsh", "qr", "cholesky", "cholesky_ex",
    "lstsq", "pinv", "pinvh", "matrix_rank", "lu", "lu_factor", "ldl_factor", "schur",
    "polar", "subspace_angles", "null_space", "orth", "svd_lowrank", "pca_lowrank",
}  # fmt: skip
#: Deprecated or top-level torch spellings of the same.
TORCH_TOP_LEVEL = {"svd", "svd_lowrank", "pca_lowrank", "lobpcg", "pinverse", "qr", "cholesky"}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for top, base in SOURCES.items():
        for path in sorted(base.rglob("*.py")):
            parts = [top, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _every_import(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``, type-only ones included."""
    for child in ast.walk(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child


def _executed_imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node`` except those in ``if TYPE_CHECKING:`` blocks."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                yield from _executed_imports(ast.Module(body=[stmt], type_ignores=[]))
        else:
            yield from _executed_imports(child)


def _known(name: str) -> str | None:
    """``name`` or its longest prefix that is a module of the tree (None: outside it)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports_of(module: str, *, type_only: bool = False) -> dict[str, int]:
    """The tree's modules imported by ``module``, with a line number: executed imports, and
    with ``type_only`` those under ``TYPE_CHECKING`` as well."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in (_every_import if type_only else _executed_imports)(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:  # relative: ``from ..x import y`` climbs level - 1 packages
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            # ``from package import submodule`` imports the submodule
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        for name in names:
            target = _known(name)
            if target is not None and target != module:
                found.setdefault(target, node.lineno)
    return found


#: module -> the modules it imports when it runs (module level and inside functions)
GRAPH = {module: _imports_of(module) for module in MODULES}
#: module -> every module it names in an import, ``TYPE_CHECKING`` ones included
FULL_GRAPH = {module: _imports_of(module, type_only=True) for module in MODULES}


def _layer_key(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "spectral_probe_cli":
        return "spectral_probe_cli"
    return ".".join(parts[:2])


def _cycles(graph: dict[str, dict[str, int]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root, edges in graph.items():
        if root in index:
            continue
        work = [(root, iter(edges))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_the_graph_sees_the_package() -> None:
    # guards the two tests below against an empty or mis-resolved graph
    assert len(MODULES) > 80
    assert "spectral_probe.regularizers._gram" in GRAPH["spectral_probe.regularizers.bss"]
    assert "spectral_probe.spectral.eigen" in GRAPH["spectral_probe.regularizers.bss"]
    assert "spectral_probe.training.tasks" in GRAPH["spectral_probe.training.config"]  # lazy
    assert (
        "spectral_probe.training.engine" not in GRAPH["spectral_probe.training.hooks"]
    )  # TYPE_CHECKING
    assert "spectral_probe.training.engine" in FULL_GRAPH["spectral_probe.training.hooks"]


def test_every_package_has_a_layer() -> None:
    unknown = sorted({_layer_key(m) for m in MODULES} - set(LAYERS))
    assert not unknown, (
        f"new package(s) {unknown}: add each to LAYERS in tests/test_architecture.py (the layers "
        "it may import from are its own and the lower ones) and to docs/architecture.md"
    )


def _packages(graph: dict[str, dict[str, int]]) -> dict[str, dict[str, tuple[str, str, int]]]:
    """The package graph: an edge per pair of packages, with one import that makes it."""
    out: dict[str, dict[str, tuple[str, str, int]]] = {_layer_key(m): {} for m in graph}
    for module, targets in graph.items():
        for target, line in targets.items():
            a, b = _layer_key(module), _layer_key(target)
            if a != b:
                out[a].setdefault(b, (module, target, line))
    return out


def test_no_package_cycles() -> None:
    packages = _packages(FULL_GRAPH)
    cycles = _cycles({p: dict.fromkeys(edges, 0) for p, edges in packages.items()})
    lines = []
    for cycle in cycles:
        lines.append("package cycle: " + ", ".join(sorted(cycle)))
        for package in sorted(cycle):
            for target, (module, imported, line) in packages[package].items():
                if target in cycle:
                    lines.append(f"  {MODULES[module].relative_to(ROOT)}:{line} imports {imported}")
    assert not cycles, "\n".join(lines)


def _private_package(module: str) -> str | None:
    """The package whose private module ``module`` is (None: a public module, or the root's
    plumbing)."""
    parts = module.split(".")
    for i in range(2, len(parts)):
        if parts[i].startswith("_"):
            return ".".join(parts[:i])
    return None


def _private_imports() -> set[tuple[str, str]]:
    found = set()
    for module, targets in FULL_GRAPH.items():
        for target in targets:
            owner = _private_package(target)
            if owner is not None and module != owner and not module.startswith(owner + "."):
                found.add((module, target))
    return found


def test_no_private_module_of_another_package() -> None:
    wrong = sorted(_private_imports() - ALLOWED_PRIVATE)
    assert not wrong, "imports of another package's private module (export the name):\n" + (
        "\n".join(
            f"  {MODULES[m].relative_to(ROOT)}:{FULL_GRAPH[m][t]} imports {t}" for m, t in wrong
        )
    )


def test_allowed_private_imports_still_exist() -> None:
    # the allow-list only shrinks: an import that was fixed must leave it
    assert sorted(ALLOWED_PRIVATE - _private_imports()) == []


def test_no_import_cycles() -> None:
    cycles = [c for c in _cycles(GRAPH) if c not in ACCEPTED_CYCLES]
    lines = []
    for cycle in cycles:
        lines.append("cycle: " + ", ".join(sorted(cycle)))
        for module in sorted(cycle):
            for target, line in GRAPH[module].items():
                if target in cycle:
                    lines.append(f"  {MODULES[module].relative_to(ROOT)}:{line} imports {target}")
    assert not cycles, "\n".join(lines)


def test_no_lower_layer_imports_a_higher_one() -> None:
    wrong = []
    for module, targets in FULL_GRAPH.items():
        here = LAYERS.get(_layer_key(module))
        for target, line in targets.items():
            there = LAYERS.get(_layer_key(target))
            if here is not None and there is not None and there > here:
                wrong.append(
                    f"{MODULES[module].relative_to(ROOT)}:{line}: {_layer_key(module)} (layer {here}) "
                    f"imports {target} (layer {there})"
                )
    assert not wrong, "\n".join(wrong)


def _dotted(node: ast.expr) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def test_decompositions_only_in_spectral() -> None:
    spectral = SOURCES["spectral_probe"] / "spectral"
    wrong = []
    for path in MODULES.values():
        if spectral in path.parents:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and "linalg" in node.module.split(".")
            ):
                wrong.append(f"{where}: from {node.module} import ...")
            elif isinstance(node, ast.Import):
                wrong += [
                    f"{where}: import {a.name}" for a in node.names if "linalg" in a.name.split(".")
                ]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                name = _dotted(node.func)
                parts = name.split(".")
                if (len(parts) >= 2 and parts[-2] == "linalg" and parts[-1] in DECOMPOSITIONS) or (
                    parts[:-1] == ["torch"] and parts[-1] in TORCH_TOP_LEVEL
                ):
                    wrong.append(f"{where}: {name}(...)")
    assert not wrong, (
        "matrix decompositions outside spectral_probe/spectral/ (add a small documented function "
        "there and call it):\n" + "\n".join(wrong)
    )


@pytest.mark.parametrize("cycle", ACCEPTED_CYCLES, ids=lambda c: sorted(c)[0])
def test_accepted_cycles_still_exist(cycle: set[str]) -> None:
    # an accepted cycle that was fixed must leave the list
    assert cycle in _cycles(GRAPH)
