"""The engine's shape, from its code: lines, the largest functions, the Trainer's
methods and attributes, public names and import cycles (counting imports inside
functions). Point it at another checkout to compare, e.g. a worktree of 0.2.0::

    python benchmarks/engine_shape.py                 # this checkout
    git worktree add /tmp/trm-0.2 v0.2.0 && python benchmarks/engine_shape.py /tmp/trm-0.2
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.test_layering import cycles, imports_of  # the same walk as the test


def functions(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """(lines, name) of every function and method, nested ones included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    item.trm_owner = node.name
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            owner = getattr(node, "trm_owner", None)
            name = f"{module}.{owner + '.' if owner else ''}{node.name}"
            found.append((node.end_lineno - node.lineno + 1, name))
    return found


def trainer_shape(tree: ast.AST) -> tuple[int, int]:
    """(methods, attributes set on self) of the class Trainer."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Trainer":
            methods = [n for n in node.body if isinstance(n, ast.FunctionDef)]
            attributes = {
                target.attr
                for n in ast.walk(node)
                if isinstance(n, ast.Assign | ast.AnnAssign)
                for target in (n.targets if isinstance(n, ast.Assign) else [n.target])
                for target in (target.elts if isinstance(target, ast.Tuple) else [target])
                if isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            }
            return len(methods), len(attributes)
    return 0, 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=Path(__file__).resolve().parents[1], type=Path)
    parser.add_argument("--top", type=int, default=5, help="the largest functions shown")
    args = parser.parse_args()
    package = args.root / "trm_core"
    paths = sorted(package.glob("*.py"))
    lines = sum(len(path.read_text().splitlines()) for path in paths)
    every, edges = [], {}
    trainer = (0, 0)
    for path in paths:
        tree = ast.parse(path.read_text())
        every += functions(tree, path.stem)
        if path.stem == "trainer":
            trainer = trainer_shape(tree)
        if path.stem != "__init__":
            edges[path.stem] = imports_of(path)
    modules = set(edges)
    edges = {name: found & modules - {name} for name, found in edges.items()}
    init = ast.parse((package / "__init__.py").read_text())
    public = next(
        (len(node.value.elts) for node in ast.walk(init)
         if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"),
        0,
    )  # fmt: skip
    print(f"trm_core at {args.root}")
    print(f"  modules {len(paths)}, lines {lines:,}, public names {public}")
    print(f"  Trainer: {trainer[0]} methods, {trainer[1]} attributes")
    found = cycles(edges)
    print(f"  import cycles: {len(found)}" + "".join(f"\n    {' <-> '.join(c)}" for c in found))
    print(f"  largest functions (of {len(every)}):")
    for size, name in sorted(every, reverse=True)[: args.top]:
        print(f"    {size:4d} lines  {name}")


if __name__ == "__main__":
    main()
