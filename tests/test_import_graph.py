"""The shape of the code, read from its imports: no cycles, and the layers keep their places.

Every project module is parsed with `ast`; imports at module level and inside
functions both count (a function-level import only hides a cycle). Imports
under `if TYPE_CHECKING:` never run and do not count.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The server's packages; tests and bench are tools around it.
PACKAGES = ("gallery", "processing", "photoevent")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((REPO / package).rglob("*.py"))
        if "migrations" not in path.parts
    }


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _imports(ast.Module(body=node.orelse, type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module `name` is, or is inside (None for other libraries)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, modules: dict[str, Path]) -> set[str]:
    """The project modules `module` imports, anywhere in its code."""
    path = modules[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from package import module` imports the module; `from module import name` the module.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        found |= {resolved for target in targets if (resolved := _resolve(target, modules)) and resolved != module}
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {module: imports_of(module, modules) for module in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_the_parser_finds_function_level_and_relative_imports(tmp_path: Path) -> None:
    modules = {"pkg": tmp_path / "pkg" / "__init__.py", "pkg.a": tmp_path / "pkg" / "a.py", "pkg.b": tmp_path / "b.py"}
    for path in modules.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    modules["pkg"].write_text("")
    modules["pkg.b"].write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n")
    modules["pkg.a"].write_text("def f():\n    from .b import thing\n")
    graph = {module: imports_of(module, modules) for module in modules}
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": set()}
    assert cycles({"x": {"y"}, "y": {"z"}, "z": {"x"}, "w": {"x"}}) == [["x", "y", "z"]]


def test_the_project_is_found(graph: dict[str, set[str]]) -> None:
    assert {"gallery.models", "processing.pipeline", "processing.backends.local"} <= set(graph)
    assert "processing.backends.base" in graph["processing.pipeline"]


def test_no_import_cycle_between_project_modules(graph: dict[str, set[str]]) -> None:
    assert cycles(graph) == []


def test_no_backend_imports_the_pipeline(graph: dict[str, set[str]]) -> None:
    backends = [module for module in graph if module.startswith("processing.backends")]
    offenders = {module for module in backends if "processing.pipeline" in reachable(graph, module)}
    assert offenders == set(), "backends take what they need as arguments"


def test_pages_and_api_do_not_import_each_other(graph: dict[str, set[str]]) -> None:
    def under(module: str, package: str) -> bool:
        return module == package or module.startswith(f"{package}.")

    pages_to_api = {(m, t) for m in graph if under(m, "gallery.views") for t in graph[m] if under(t, "gallery.api")}
    api_to_pages = {(m, t) for m in graph if under(m, "gallery.api") for t in graph[m] if under(t, "gallery.views")}
    assert pages_to_api | api_to_pages == set()
