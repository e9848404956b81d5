"""DATA_DIR: loading the settings creates nothing; prepare_data_dir() makes it, private."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from photoevent.datadir import SECRET_KEY_FILE, prepare_data_dir, read_secret_key
from photoevent.static_storage import CollectedStaticFilesStorage

REPO = Path(__file__).resolve().parents[2]
# Variables that would point a child process at the test run's files rather
# than at the DATA_DIR the test gives it.
NOT_INHERITED = ("DATABASE_URL", "SQLITE_PATH", "MEDIA_ROOT", "STATIC_ROOT", "SECRET_KEY", "REDIS_URL", "Q_BROKER")


def child_env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update(DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="photoevent.settings", **overrides)
    return env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_loading_the_settings_leaves_a_missing_data_dir_absent(tmp_path: Path) -> None:
    data_dir = tmp_path / "absent" / "data"
    code = (
        "import django\n"
        "from django.conf import settings\n"
        "django.setup()\n"
        "print(settings.DATA_DIR, settings.DATABASES['default']['NAME'], settings.STORAGES['staticfiles']['BACKEND'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=child_env(data_dir), capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        str(data_dir),
        str(data_dir / "db.sqlite3"),
        "photoevent.static_storage.CollectedStaticFilesStorage",
    ]
    assert not (tmp_path / "absent").exists()


def test_prepare_makes_a_private_data_dir_with_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    assert prepare_data_dir() == data_dir
    key = read_secret_key(data_dir)
    assert len(key) >= 50
    assert mode(data_dir) == 0o700
    assert mode(data_dir / SECRET_KEY_FILE) == 0o600
    assert prepare_data_dir() == data_dir
    assert read_secret_key(data_dir) == key, "a second start must keep the key"
    assert [path.name for path in data_dir.iterdir()] == [SECRET_KEY_FILE], "no draft key left behind"


def test_prepare_makes_an_existing_data_dir_private(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Older installations wrote a 0755 DATA_DIR and a readable key."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    (data_dir / SECRET_KEY_FILE).write_text("an-older-key")
    (data_dir / SECRET_KEY_FILE).chmod(0o644)
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    prepare_data_dir()
    assert mode(data_dir) == 0o700
    assert mode(data_dir / SECRET_KEY_FILE) == 0o600
    assert read_secret_key(data_dir) == "an-older-key"


def test_prepare_writes_no_key_when_the_environment_has_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    prepare_data_dir()
    assert not (tmp_path / "data" / SECRET_KEY_FILE).exists()


def test_an_empty_key_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / SECRET_KEY_FILE).write_text("\n")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="is empty"):
        prepare_data_dir()


def test_prepare_gives_the_key_to_settings_loaded_without_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """pytest-django loads the settings before any conftest: on a first run, without a key."""
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    # Set directly, not through pytest-django's `settings`: its setting_changed
    # signal would make installed apps (django-sesame) derive keys from "".
    monkeypatch.setattr(settings, "SECRET_KEY", "")
    prepare_data_dir()
    assert settings.SECRET_KEY == read_secret_key(tmp_path) != ""


def test_processes_starting_together_share_one_key(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    code = (
        "from photoevent.datadir import prepare_data_dir, read_secret_key; print(read_secret_key(prepare_data_dir()))"
    )
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", code], cwd=REPO, env=child_env(data_dir), stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    keys = {start.communicate(timeout=60)[0].strip() for start in starts}
    assert all(start.returncode == 0 for start in starts)
    assert keys == {read_secret_key(data_dir)} and "" not in keys


@pytest.mark.slow
def test_first_test_run_gets_the_key_it_creates(tmp_path: Path) -> None:
    """A newcomer's first `scripts/test`: the settings load before DATA_DIR has a key."""
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{Path(__file__).relative_to(REPO)}::test_settings_use_the_key_in_data_dir",
        ],
        cwd=REPO,
        env=child_env(data_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout


def test_settings_use_the_key_in_data_dir(settings) -> None:
    if os.environ.get("SECRET_KEY"):
        pytest.skip("SECRET_KEY is set in the environment")
    assert settings.SECRET_KEY == read_secret_key(settings.DATA_DIR) != ""


def test_static_names_are_plain_before_collectstatic_and_hashed_after(tmp_path: Path) -> None:
    storage = CollectedStaticFilesStorage(location=str(tmp_path), base_url="/static/")
    assert storage.url("css/site.css") == "/static/css/site.css"
    manifest = {"paths": {"css/site.css": "css/site.0123456789ab.css"}, "version": "1.1", "hash": "x"}
    (tmp_path / "staticfiles.json").write_text(json.dumps(manifest))
    collected = CollectedStaticFilesStorage(location=str(tmp_path), base_url="/static/")
    assert collected.url("css/site.css") == "/static/css/site.0123456789ab.css"
    with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
        collected.url("css/not-collected.css")
