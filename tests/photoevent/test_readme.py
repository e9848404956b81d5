"""The README documents every environment variable the server reads."""

from __future__ import annotations

import re

from testsupport.paths import REPO

# A variable read through the env helpers or os.environ, by literal name.
READ = re.compile(r"""(?:env_[a-z]+\(\s*|os\.environ(?:\.get)?[\[(]\s*)["']([A-Z][A-Z0-9_]+)["']""")
APP_PACKAGES = ("photoevent", "gallery", "processing")


def _variables_read() -> set[str]:
    names: set[str] = set()
    for package in APP_PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            names.update(READ.findall(path.read_text()))
    return names


def test_every_environment_variable_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", readme))
    variables = _variables_read()
    assert len(variables) > 50, "the pattern no longer finds the settings' variables"
    missing = sorted(variables - documented)
    assert not missing, f"add these to the README's environment table: {', '.join(missing)}"
