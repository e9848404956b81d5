from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django_q.conf import Conf
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from gallery.models import PHOTOGRAPHERS_GROUP, Event, Membership, profile_for
from photoevent.datadir import prepare_data_dir
from processing import backends

REPO = Path(__file__).resolve().parent.parent
# The one place that says where the real face photos are.
FACES_DIR = Path(os.environ.get("PHOTOEVENT_FACES_DIR", REPO.parent / "shared" / "faces"))


def pytest_configure(config: pytest.Config) -> None:
    # Loading the settings creates nothing; the test database and the secret
    # key need DATA_DIR, prepared here as manage.py prepares it.
    prepare_data_dir()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


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

    cache.clear()
    forget_cached_faces()


@pytest.fixture(autouse=True)
def sync_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run django-q2 tasks in-process; queue tests start a real cluster instead."""
    monkeypatch.setattr(Conf, "SYNC", True)


@pytest.fixture
def start_cluster(
    transactional_db: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., Any]]:
    """Start real qcluster subprocesses (fake marker backend unless told otherwise)."""
    from django_q.brokers import get_broker

    from tests.cluster import Cluster, subprocess_env

    monkeypatch.setattr(Conf, "SYNC", False)
    get_broker().purge_queue()
    clusters: list[Cluster] = []

    def start(**env: str) -> Cluster:
        env.setdefault("FACE_BACKEND", "tests.fakes.FakeBackend")
        cluster = Cluster(tmp_path / f"cluster-{len(clusters)}.log", subprocess_env(**env)).start()
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        cluster.kill()
    get_broker().purge_queue()


@pytest.fixture
def start_server(transactional_db: None, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start live web servers (runserver subprocesses) against the test database."""
    from tests.cluster import Server, subprocess_env

    servers: list[Server] = []

    def start(**env: str) -> Server:
        env.setdefault("FACE_BACKEND", "tests.fakes.FakeBackend")
        server = Server(tmp_path / f"server-{len(servers)}.log", subprocess_env(**env)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[backends.FaceBackend]:
    monkeypatch.setitem(backends.BACKENDS, "local", "tests.fakes.FakeBackend")
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
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    def make(username: str, *, photographer: bool = False, staff: bool = False, consent: bool = True) -> User:
        user = User.objects.create_user(username=username, password="Pass-word-1234", is_staff=staff)
        if photographer:
            user.groups.add(Group.objects.get_or_create(name=PHOTOGRAPHERS_GROUP)[0])
        profile = profile_for(user)
        if consent:
            from django.utils import timezone

            profile.face_consent_at = timezone.now()
            profile.save()
        return user

    return make


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
