from __future__ import annotations

import contextlib
import functools
import io
import os
import shutil
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import translation
from django_q.brokers import get_broker
from django_q.conf import Conf
from PIL import Image
from rest_framework.test import APIClient

from gallery.models import Event, Membership, Photo
from gallery.tokens import issue_token
from gallery.uploads import accept_uploads
from photoevent.datadir import prepare_data_dir
from processing import backends, services, tasks
from tests.cluster import running_processes, start_qcluster, start_runserver
from tests.correction_scenes import FIRST, SCENE_BACKEND, scene_file
from testsupport.markers import FAKE_BACKEND, scene_png
from testsupport.paths import FACES_DIR
from testsupport.processes import Proc
from testsupport.users import create_user

PASSWORD = "Pass-word-1234"

# The suite checks English texts; tests/photoevent/test_i18n.py asks for French
# itself. pytest-django has loaded the settings before any conftest, so the
# variable is for the servers and clusters the tests start (they inherit the
# environment), and override_settings pins the loaded settings for the whole
# run: its setting_changed signal also drops the default translation that
# django.setup() has already built for the environment's language.
os.environ["LANGUAGE_CODE"] = "en"
override_settings(LANGUAGE_CODE="en").enable()


def pytest_configure(config: pytest.Config) -> None:
    # Loading the settings creates nothing; the test database and the secret
    # key need DATA_DIR, prepared here as manage.py prepares it.
    prepare_data_dir()


@pytest.fixture(autouse=True)
def no_language_left_active() -> Iterator[None]:
    """A request in French leaves French active in the thread (LocaleMiddleware); the next test starts without it."""
    yield
    translation.deactivate()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def steady_rate_limit_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """django-ratelimit counts in fixed windows of the wall clock (staggered per key).

    A test's few requests must not straddle the end of one, or a limit of 2/m
    lets a third request through. Its clock stands still for the test in this
    process; servers the tests start keep their own.
    """
    import time
    from types import SimpleNamespace

    import django_ratelimit.core

    now = time.time()
    monkeypatch.setattr(django_ratelimit.core, "time", SimpleNamespace(time=lambda: now))


@pytest.fixture(autouse=True, scope="session")
def s3_bucket() -> None:
    """With STORAGE_BACKEND=s3 (the S3 leg of CI, on moto's server), the bucket the storage writes to."""
    from django.conf import settings

    if settings.STORAGE_BACKEND != "s3":
        return
    import boto3

    client = boto3.client("s3", endpoint_url=settings.AWS_S3_ENDPOINT_URL, region_name=settings.AWS_S3_REGION_NAME)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=settings.AWS_STORAGE_BUCKET_NAME)


@pytest.fixture(autouse=True)
def media_root(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "upload-tmp")
    Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    # The caches (files or Redis, and the per-process copies of event
    # descriptors) outlive a test's rolled-back transaction and its ids.
    from django.core.cache import cache

    from processing.backends.local import forget_cached_faces

    try:
        cache.clear()
    except sqlite3.DatabaseError as exc:
        _rebuild_disk_cache(exc)
    forget_cached_faces()


def _rebuild_disk_cache(error: Exception) -> None:
    """Start the embedded test cache afresh after SQLite found one of its shard files malformed.

    Seen a few times in long runs where servers and clusters of several tests
    share the cache files, cause not found; the warning keeps it visible in
    the test report instead of failing every later test on the same file.
    """
    from django.conf import settings
    from django.core.cache import caches

    location = Path(settings.CACHES["default"]["LOCATION"])
    warnings.warn(f"the embedded test cache at {location} was malformed ({error}); rebuilt", stacklevel=2)
    caches["default"]._cache.close()  # type: ignore[attr-defined]  # diskcache's own connections; the backend's close() keeps them
    delattr(caches._connections, "default")  # type: ignore[attr-defined]  # the next use builds a new cache, tables included
    shutil.rmtree(location, ignore_errors=True)


@pytest.fixture(autouse=True)
def sync_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run django-q2 tasks in-process; queue tests start a real cluster instead."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def start_cluster(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., Proc]]:
    """Start real qcluster subprocesses (marker backend unless told otherwise); they are killed afterwards."""
    monkeypatch.setattr(Conf, "SYNC", False)
    get_broker().purge_queue()
    with running_processes(tmp_path, "cluster", start_qcluster) as start:
        yield start
    get_broker().purge_queue()


@pytest.fixture
def start_server(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """Start live web servers (runserver subprocesses) against the test database; they are killed afterwards."""
    with running_processes(tmp_path, "server", start_runserver) as start:
        yield start


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[backends.FaceBackend]:
    monkeypatch.setitem(backends.BACKENDS, "local", FAKE_BACKEND)
    backends.get_backend.cache_clear()
    yield backends.get_backend()
    backends.get_backend.cache_clear()


@pytest.fixture
def faces_dir() -> Path:
    if not (FACES_DIR / "manifest.json").exists():
        pytest.skip(f"real face photos not found at {FACES_DIR} (set PHOTOEVENT_FACES_DIR)")
    return FACES_DIR


def _token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user)}")
    return client


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    """`make_user(username, photographer=False, staff=False, consent=True)`, password PASSWORD."""
    return functools.partial(create_user, password=PASSWORD)


@pytest.fixture
def photographer(make_user: Callable[..., User]) -> User:
    return make_user("photographer", photographer=True)


@pytest.fixture
def other_photographer(make_user: Callable[..., User]) -> User:
    return make_user("other-photographer", photographer=True)


@pytest.fixture
def attendee(make_user: Callable[..., User]) -> User:
    return make_user("attendee")


@pytest.fixture
def staff(make_user: Callable[..., User]) -> User:
    return make_user("staff", staff=True)


@pytest.fixture
def event(photographer: User) -> Event:
    return Event.objects.create(owner=photographer, name="Wedding")


@pytest.fixture
def member(attendee: User, event: Event) -> User:
    Membership.objects.create(user=attendee, event=event)
    return attendee


@pytest.fixture
def scene_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The marker backend with tests.correction_scenes' hand-set descriptors, as the local backend."""
    monkeypatch.setitem(backends.BACKENDS, "local", SCENE_BACKEND)
    backends.get_backend.cache_clear()
    yield backends.get_backend()
    backends.get_backend.cache_clear()


@pytest.fixture
def scene_upload(event: Event, photographer: User, scene_backend: Any) -> Callable[..., dict[str, Photo]]:
    """Upload and process tests.correction_scenes photos by name; returns them by name."""

    def send(*names: str) -> dict[str, Photo]:
        files = [png_upload(name, scene_file(name, seed=i)) for i, name in enumerate(names)]
        accepted, rejected = accept_uploads(event, photographer, files, enqueue=False)
        assert not rejected
        tasks.process_photos([a.photo.pk for a in accepted])
        return {a.photo.filename: Photo.objects.get(pk=a.photo.pk) for a in accepted}

    return send


@pytest.fixture
def photos(scene_upload: Callable[..., dict[str, Photo]], member: User) -> dict[str, Photo]:
    """The first photos of tests.correction_scenes' event, with the member's selfie enrolled."""
    result = scene_upload(*FIRST)
    services.enrol_selfie(member, png_upload("me.png", scene_png([0])))
    return result


@pytest.fixture
def client_for() -> Callable[[User], APIClient]:
    return _token_client


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


def jpeg_upload(name: str = "photo.jpg", size: tuple[int, int] = (800, 600), colour: Any = (90, 120, 150)) -> Any:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


def png_upload(name: str, data: bytes) -> Any:
    return SimpleUploadedFile(name, data, content_type="image/png")
