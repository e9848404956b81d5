"""Who may import whom: the application never imports test or benchmark code,
tests and benchmarks share testsupport instead of importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from testsupport.paths import REPO

APPLICATION = ["gallery", "processing", "photoevent"]
HELPERS = {"tests", "bench", "testsupport"}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports, at module or function level."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (REPO / folder).rglob("*.py"))


def offenders(paths: list[Path], forbidden: set[str]) -> dict[str, set[str]]:
    found = {str(path.relative_to(REPO)): imported_packages(path) & forbidden for path in paths}
    return {name: packages for name, packages in found.items() if packages}


@pytest.mark.parametrize("folder", APPLICATION)
def test_application_code_imports_no_test_or_bench_code(folder: str) -> None:
    assert modules(folder), f"no modules under {folder}/"
    assert offenders(modules(folder), HELPERS) == {}


def test_tests_do_not_import_bench_except_the_tests_of_bench() -> None:
    paths = [path for path in modules("tests") if "bench" not in path.relative_to(REPO / "tests").parts]
    assert offenders(paths, {"bench"}) == {}


def test_bench_and_testsupport_do_not_import_tests() -> None:
    assert offenders(modules("bench", "testsupport"), {"tests"}) == {}


def test_the_check_sees_function_level_imports(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("def f():\n    from bench.harness import out\n    import tests.fakes\n")
    assert imported_packages(module) == {"bench", "tests"}
