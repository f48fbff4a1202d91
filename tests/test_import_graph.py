"""The import graph of src/odeflow (every import, function-local ones included, TYPE_CHECKING
blocks excluded): no circles, and no import from a lower layer to a higher one (docs/design.md:
cli -> tasks -> training -> flows/models -> nn -> gradients -> solvers)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import Dict, List, Set

import pytest

import odeflow

ROOT = Path(odeflow.__file__).parent
# a layer may import only from itself and the layers listed after it
ORDER = ["cli", "tasks", "training", "data", "flows", "models", "nn", "top", "gradients", "solvers"]
MAY_IMPORT = {
    "solvers": {"solvers"},
    "gradients": {"gradients", "solvers"},
    "nn": {"nn"},
    "flows": {"flows", "nn", "top", "gradients", "solvers"},
    "models": {"models", "nn", "flows", "data", "top", "gradients", "solvers"},
    "training": {"training", "top", "gradients", "solvers", "flows", "models", "nn", "data"},
}


def _modules() -> Dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _in_type_checking(tree: ast.AST) -> Set[int]:
    skip: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


@functools.lru_cache(maxsize=1)
def import_graph() -> Dict[str, Set[str]]:
    """module -> the odeflow modules it imports (a name imported from a package counts as its submodule)."""
    mods = _modules()
    graph: Dict[str, Set[str]] = {}
    for mod, path in mods.items():
        pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        tree = ast.parse(path.read_text())
        skip = _in_type_checking(tree)
        deps: Set[str] = set()
        for node in ast.walk(tree):
            if id(node) in skip or not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.ImportFrom):
                base = ".".join(
                    (pkg[: len(pkg) - node.level + 1] if node.level else []) + ([node.module] if node.module else [])
                )
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                targets = [a.name for a in node.names]
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if target and target != mod and not mod.startswith(target + "."):
                    deps.add(target)
        graph[mod] = deps
    return graph


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else "top"


def test_the_graph_sees_known_imports():
    graph = import_graph()
    assert "odeflow.solvers.loop" in graph["odeflow.solvers.plain_run"]
    assert "odeflow.solving" in graph["odeflow.solve"]
    assert "odeflow.solvers.adams" in graph["odeflow.solvers.methods"]


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("low", sorted(MAY_IMPORT))
def test_no_import_climbs_a_layer(low):
    graph = import_graph()
    bad = sorted(
        f"{m} -> {d}"
        for m, deps in graph.items()
        if layer(m) == low
        for d in deps
        if layer(d) not in MAY_IMPORT[low] and d != "odeflow"
    )
    assert bad == []
