"""The layering of the gallery's web code, read from its imports (function-level ones included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

GALLERY = Path(__file__).resolve().parents[2] / "gallery"
PAGES = sorted((GALLERY / "views").glob("*.py"))
API = [GALLERY / "api.py"]
# Modules the pages and the API share; they call processing only through its services.
SHARED = [GALLERY / "access.py", GALLERY / "uploads.py", GALLERY / "ratelimits.py", GALLERY / "urls.py"]


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file; `from a import b` counts a and a.b."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_files_checked_exist() -> None:
    assert {p.stem for p in PAGES} >= {"attendee", "account", "studio", "media"}
    assert all(path.exists() for path in API + SHARED)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_do_not_import_the_api(path: Path) -> None:
    assert not {m for m in imported_modules(path) if m == "gallery.api" or m.startswith("gallery.api.")}


@pytest.mark.parametrize("path", [*API, GALLERY / "access.py", GALLERY / "uploads.py"], ids=lambda p: p.name)
def test_api_and_shared_code_do_not_import_the_pages(path: Path) -> None:
    assert not {m for m in imported_modules(path) if m == "gallery.views" or m.startswith("gallery.views.")}


@pytest.mark.parametrize("path", PAGES + API + SHARED, ids=lambda p: p.name)
def test_processing_is_reached_only_through_its_services(path: Path) -> None:
    processing = {m for m in imported_modules(path) if m == "processing" or m.startswith("processing.")}
    assert {m.rsplit(".", 1)[0] if m.count(".") > 1 else m for m in processing} <= {"processing.services"}
