"""The data folder of an installation: where it is, and making it ready for use.

Importing the settings creates nothing, so that a check, a test or a tool can
load them without leaving folders behind. The entry points (manage.py,
photoevent/wsgi.py, photoevent/asgi.py) call `prepare_data_dir()` before
Django first uses the settings; the settings only read the secret key that
it stored.

Everything this makes is private to the account that runs the server: the
folders 0700, the files 0600. The secret key is written with that mode; the
files Django, SQLite and diskcache create later (database, its WAL and shm
files, cache shards, collected static files) get it from the process umask,
which `prepare_data_dir()` sets to 077.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from photoevent.env import env_str

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
# Removes every group and other permission from the files the process creates.
PRIVATE_UMASK = 0o077


def data_dir_from_env() -> Path:
    """DATA_DIR from the environment (`./data` in the repository when unset or empty)."""
    return Path(env_str("DATA_DIR").strip() or BASE_DIR / "data").resolve()


def read_secret_key(data_dir: Path) -> str:
    """The key stored in `data_dir`, or "" when `prepare_data_dir()` has not made it yet."""
    try:
        return (data_dir / SECRET_KEY_FILE).read_text().strip()
    except FileNotFoundError:
        return ""


def make_private_dir(path: Path) -> None:
    """Create `path` (and missing parents) readable by the owner only; an existing folder is left as it is."""
    path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)


def _restrict(path: Path, mode: int) -> None:
    """Drop group and other permissions from a path this account owns."""
    info = path.stat()
    if info.st_uid == os.getuid() and stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(mode)


def _stored_secret_key(data_dir: Path) -> str:
    """The key in `data_dir`, generated on first use; safe when several processes start at once."""
    key_file = data_dir / SECRET_KEY_FILE
    if not key_file.exists():
        # Written aside, then linked into place: link() fails when another
        # process got there first, and no process ever reads a half-written key.
        draft = data_dir / f".{SECRET_KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(50))
                out.flush()
                os.fsync(out.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(draft, key_file)
        finally:
            draft.unlink(missing_ok=True)
    _restrict(key_file, PRIVATE_FILE_MODE)
    key = read_secret_key(data_dir)
    if not key:
        raise ImproperlyConfigured(f"{key_file} is empty: delete it to have a new key made, or set SECRET_KEY")
    return key


def _give_key_to_loaded_settings(key: str) -> None:
    """Set SECRET_KEY on settings that were loaded before the key file existed.

    Entry points call `prepare_data_dir()` before the settings load, which then
    read the file. pytest-django loads them before any conftest can run, so on
    a first test run they were read without a key.
    """
    if not settings.configured:
        return
    try:
        # Django raises on reading an empty key.
        settings.SECRET_KEY  # noqa: B018
    except ImproperlyConfigured:
        settings.SECRET_KEY = key


def prepare_data_dir() -> Path:
    """Make DATA_DIR ready: private folders, the secret key, a private umask. Returns DATA_DIR.

    Idempotent and cheap, so every process calls it at start. An existing
    DATA_DIR that others can read is made private (0700), which also covers
    files older installations created with looser modes. With SECRET_KEY set
    in the environment no key file is written.
    """
    os.umask(PRIVATE_UMASK)
    data_dir = data_dir_from_env()
    make_private_dir(data_dir)
    _restrict(data_dir, PRIVATE_DIR_MODE)
    if not env_str("SECRET_KEY"):
        _give_key_to_loaded_settings(_stored_secret_key(data_dir))
    # Django writes uploads above FILE_UPLOAD_MAX_MEMORY_SIZE to this folder
    # and fails if it is missing; whitenoise warns about a missing STATIC_ROOT.
    make_private_dir(Path(settings.FILE_UPLOAD_TEMP_DIR))
    make_private_dir(Path(settings.STATIC_ROOT))
    return data_dir
