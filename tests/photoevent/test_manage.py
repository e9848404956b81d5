"""manage.py on a new or wrong DATA_DIR: a newcomer's first commands."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.photoevent.test_datadir import REPO, child_env


def manage(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # umask 022, a login shell's usual one: the files must be private because
    # manage.py makes them so, not because the test run's umask is strict.
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=child_env(data_dir),
        capture_output=True,
        text=True,
        check=False,
        umask=0o022,
        timeout=300,
    )


def test_a_command_on_an_unmigrated_database_says_to_migrate(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = manage(data_dir, "createphotographer", "alice", "--password", "Pass-word-1234")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "python manage.py migrate" in result.stderr
    assert f"DATA_DIR is {data_dir}." in result.stderr
    assert str(data_dir / "db.sqlite3") in result.stderr


def test_traceback_option_still_shows_the_traceback(tmp_path: Path) -> None:
    result = manage(tmp_path / "data", "createphotographer", "alice", "--password", "x", "--traceback")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "no such table" in result.stderr


@pytest.mark.slow
def test_migrate_then_createphotographer_on_a_new_data_dir_leaves_only_private_files(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    migrated = manage(data_dir, "migrate", "--noinput", "-v0")
    assert migrated.returncode == 0, migrated.stderr
    created = manage(data_dir, "createphotographer", "alice", "--password", "Pass-word-1234")
    assert created.returncode == 0, created.stderr
    assert len(created.stdout.strip()) == 64, "prints the API token"
    files = [path for path in data_dir.rglob("*") if path.is_file()]
    assert {"secret_key", "db.sqlite3"} <= {path.name for path in files}
    loose = {
        str(path.relative_to(data_dir)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in [data_dir, *data_dir.rglob("*")]
        if stat.S_IMODE(path.stat().st_mode) & 0o077
    }
    assert loose == {}, "files and folders others can read"
