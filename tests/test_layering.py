"""The engine's layering: no import cycle in trm_core, counting imports inside
functions (a cycle hidden in a function is still a cycle a reader has to hold)."""

from __future__ import annotations

import ast
from pathlib import Path

import trm_core

PACKAGE = Path(trm_core.__file__).parent


def imports_of(path: Path) -> set[str]:
    """The trm_core modules ``path`` imports, anywhere in it (the package itself left out:
    ``from . import __version__``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 0 and (node.module or "").startswith("trm_core."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("trm_core.")
            )
    return found


def graph() -> dict[str, set[str]]:
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    return {name: imports_of(path) & set(modules) - {name} for name, path in modules.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in sorted(edges[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_checker_reads_imports_inside_functions(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from .a import x\n\ndef f():\n    from .b import y\n    import trm_core.c\n")
    assert imports_of(source) == {"a", "b", "c"}


def test_trm_core_has_no_import_cycle():
    edges = graph()
    assert len(edges) > 20 and edges["trainer"]  # the walk found the modules and imports
    assert cycles(edges) == []
