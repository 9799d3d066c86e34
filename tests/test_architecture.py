"""The architecture's rules, read from the source: no import cycles, one direction, short functions.

Imports point one way: ``convert -> training -> edge`` (convert may import both,
training only edge, edge neither). The one exception is ``edge.cli``, the single
``vanity`` command: its workstation commands (train, convert, label, eval) import
training/convert inside the command, never at module level, so the device install
(no TensorFlow) still loads it.

The import graph is built from the AST (module-level and function-level imports,
relative imports resolved), so a lazy import inside a function counts as much as
one at the top: both run, and both tie the modules together. The checks run on
the real tree and, first, on small planted trees, so a checker that sees nothing
cannot pass by accident.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("edge", "convert", "training")
MAX_FUNCTION_LINES = 80


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted name -> file of every module under the packages."""
    return {
        _module_name(p, root): p
        for pkg in packages
        for p in sorted((root / pkg).rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` is or lies in (``a.b.attr`` -> ``a.b``); None if external."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in known:
            return candidate
    return None


def _import_nodes(tree: ast.Module, module_level: bool) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement; with ``module_level`` only those that run on import (not in a function)."""
    out: list[ast.Import | ast.ImportFrom] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            out.append(node)
        stack.extend(
            child
            for child in ast.iter_child_nodes(node)
            if not (module_level and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))
        )
    return out


def _imports(module: str, path: Path, known: dict[str, Path], module_level: bool) -> set[str]:
    """The known modules one module imports (anywhere in its body, or only at module level)."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), str(path)), module_level):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                # `from . import x` in a/b.py is relative to package a; in a/__init__.py to a itself.
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import name`: the submodule pkg.name when there is one, else pkg itself.
            targets = [f"{stem}.{a.name}" if f"{stem}.{a.name}" in known else stem for a in node.names]
        for target in targets:
            resolved = _resolve(target, known)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES, module_level: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports (with ``module_level``, only on import)."""
    known = _modules(root, packages)
    return {name: _imports(name, path, known, module_level) for name, path in known.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def forbidden_imports(
    graph: dict[str, set[str]], package: str, banned: tuple[str, ...], allowed: tuple[str, ...] = ()
) -> list[str]:
    """``module -> target`` for each import from ``package`` (but not the ``allowed`` modules) into ``banned``."""
    return sorted(
        f"{m} -> {t}"
        for m, targets in graph.items()
        if m.split(".")[0] == package and m not in allowed
        for t in targets
        if t.split(".")[0] in banned
    )


def long_functions(root: Path, package: str, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line name (N lines)`` for every function or method (nested ones too) longer than ``limit``."""
    out = []
    for path in sorted((root / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = (node.end_lineno or node.lineno) - node.lineno + 1
                if n > limit:
                    out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({n} lines)")
    return out


def _plant(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


# --------------------------------------------------------------------------- the checkers see violations


def test_checker_finds_a_cycle_through_a_relative_function_level_import(tmp_path):
    """Guards against a cycle check that passes because it misses lazy or relative imports."""
    root = _plant(
        tmp_path,
        {
            "edge/__init__.py": "",
            "edge/a.py": "from edge.b import thing\n",
            "edge/b.py": "def thing():\n    from . import c\n    return c\n",
            "edge/c.py": "def back():\n    from .a import thing\n",
            "edge/d.py": "import os\nimport edge.b\n",
        },
    )
    graph = import_graph(root, ("edge",))
    assert graph["edge.d"] == {"edge.b"}  # external imports are ignored, `import x.y` resolved
    cycle = find_cycle(graph)
    assert cycle is not None and cycle[0] == cycle[-1]
    assert set(cycle) == {"edge.a", "edge.b", "edge.c"}
    (root / "edge" / "c.py").write_text("def back():\n    pass\n")
    assert find_cycle(import_graph(root, ("edge",))) is None


def test_checker_finds_edge_importing_a_workstation_package(tmp_path):
    """Guards against a direction check blind to `from pkg import module` or imports inside functions."""
    root = _plant(
        tmp_path,
        {
            "edge/__init__.py": "",
            "edge/x.py": "def f():\n    from convert import quantize\n",
            "edge/cli.py": "import edge.x\n\ndef train():\n    import training.run\n",
            "convert/__init__.py": "",
            "convert/quantize.py": "from edge import x\n",
            "training/__init__.py": "",
            "training/run.py": "import edge.x\n",
        },
    )
    graph = import_graph(root)
    assert forbidden_imports(graph, "edge", ("training", "convert"), allowed=("edge.cli",)) == [
        "edge.x -> convert.quantize"
    ]
    assert forbidden_imports(import_graph(root, module_level=True), "edge", ("training",)) == []
    (root / "edge" / "cli.py").write_text("from training import run\n")
    assert forbidden_imports(import_graph(root, module_level=True), "edge", ("training",)) == [
        "edge.cli -> training.run"
    ]


def test_checker_finds_a_long_method(tmp_path):
    """Guards against a length check that skips methods or nested functions."""
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    root = _plant(tmp_path, {"edge/m.py": f"class A:\n    def long(self):\n{body}\n"})
    assert long_functions(root, "edge") == [f"edge/m.py:2 long ({MAX_FUNCTION_LINES + 1} lines)"]


# --------------------------------------------------------------------------- the real tree


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    g = import_graph(ROOT)
    # The graph really is this tree's: conversion reads training's run record, training the contract.
    assert "training.run" in g["convert.quantize"] and "edge.contract" in g["training.run"]
    return g


def test_no_import_cycles(graph):
    """Guards against a module importing one that imports it back (the old convert.quantize <->
    convert._training loop): a cycle makes import order matter and the two modules one."""
    assert find_cycle(graph) is None, "import cycle: " + " -> ".join(find_cycle(graph) or [])


def test_edge_never_imports_training_or_convert(graph):
    """Guards against the device package pulling in workstation code (and with it TensorFlow): no edge
    module imports training or convert, and the CLI's workstation commands do so only when they run."""
    assert forbidden_imports(graph, "edge", ("training", "convert"), allowed=("edge.cli",)) == []
    assert forbidden_imports(import_graph(ROOT, module_level=True), "edge", ("training", "convert")) == []


def test_training_never_imports_convert(graph):
    """Guards against training reaching up into conversion (the run record is training's; convert reads it)."""
    assert forbidden_imports(graph, "training", ("convert",)) == []


def test_no_long_functions_in_edge():
    """Guards against functions that do several jobs: none in edge/ is over 80 lines."""
    offenders = long_functions(ROOT, "edge")
    assert offenders == [], "over 80 lines: " + "; ".join(offenders)
