"""The watcher installs on its own: a bare virtualenv, `pip install ./clients/watcher`, no Django."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
CLIENT = REPO / "clients" / "watcher"


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    """Overrides conftest's cache clearing: this test never touches the server's caches."""


def run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_pip_install_into_a_bare_virtualenv(tmp_path: Path) -> None:
    target = tmp_path / "venv"
    venv.EnvBuilder(system_site_packages=False, with_pip=True, clear=True).create(target)
    bindir = target / ("Scripts" if sys.platform == "win32" else "bin")
    python = str(bindir / "python")
    # Nothing of this process's environment may make the server's packages importable.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"

    installed = run([python, "-m", "pip", "install", str(CLIENT)], env)
    if installed.returncode != 0:
        # Tell a missing package index (offline machine) apart from a broken package.
        probe = run([python, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "probe"), "hatchling"], env)
        if probe.returncode != 0:
            pytest.skip(f"no package index reachable to install the build backend from:\n{probe.stderr[-800:]}")
        pytest.fail(f"pip install {CLIENT} failed:\n{installed.stdout[-2000:]}\n{installed.stderr[-2000:]}")

    listed = run([python, "-m", "pip", "list", "--format=json"], env)
    assert listed.returncode == 0, listed.stderr
    names = {entry["name"].lower() for entry in json.loads(listed.stdout)}
    assert "photoevent-watch" in names
    assert {"requests", "watchfiles", "tqdm"} <= names
    assert not {name for name in names if name.startswith("django")}, names
    assert run([python, "-c", "import django"], env).returncode != 0

    helped = run([str(bindir / "photoevent-watch"), "--help"], env, timeout=60)
    assert helped.returncode == 0, helped.stderr
    assert "PHOTOEVENT_TOKEN" in helped.stdout
    # Run from anywhere, it is the installed copy that answers, not the checkout's.
    where = run([python, "-c", "import photoevent_watch; print(photoevent_watch.__file__)"], env)
    assert str(target) in where.stdout, where.stdout
