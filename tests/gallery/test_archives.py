"""ZIPs built on the queue into storage, then served like photos: build, reuse, renewal, access and the waiting page."""

from __future__ import annotations

import io
import json
import random
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from gallery.models import ArchiveStatus, EventVisibility, Match, Membership, PhotoArchive, Selfie
from processing import archives
from processing.queue_startup import SCHEDULES
from processing.services import delete_event
from tests.gallery.conftest import selfie_file
from tests.gallery.test_watermark import TEXT_MARK
from tests.gallery.test_watermark import _assert_marked as assert_marked
from tests.gallery.test_watermark import _put as put_watermark
from testsupport.media import media_answer

pytestmark = pytest.mark.django_db

on_local_storage = pytest.mark.skipif(
    settings.STORAGE_BACKEND != "local", reason="local-file serving; the S3 leg redirects"
)


@pytest.fixture(autouse=True)
def always_queue(settings: Any) -> None:
    """Every ZIP goes through the queue, however small the test photos are."""
    settings.ZIP_STREAM_MAX_BYTES = 0


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The build tasks put on the queue (they still run, in sync mode)."""
    calls: list[tuple[Any, ...]] = []
    enqueue = archives.async_task

    def recording(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return enqueue(*args, **kwargs)

    monkeypatch.setattr(archives, "async_task", recording)
    return calls


@pytest.fixture
def guest(page_client: Any, member: Any, event: Any, event_photos: Any) -> Any:
    """The member's browser, with a selfie of person 0 (in p0 and p3)."""
    client = page_client(member)
    client.post(reverse("gallery-selfie"), {"selfie": selfie_file([0])})
    return client


def zip_url(event: Any) -> str:
    return reverse("gallery-my-photos-zip", args=[event.pk])


def page_url(event: Any) -> str:
    return reverse("gallery-my-photos-archive", args=[event.pk])


def status_url(event: Any) -> str:
    return reverse("gallery-my-photos-archive-status", args=[event.pk])


def request_zip(client: Any, event: Any, capture: Any) -> Any:
    # The build task goes to the queue on commit, and runs then (sync mode).
    with capture(execute=True):
        return client.get(zip_url(event))


def zip_names(body: bytes) -> list[str]:
    archive = zipfile.ZipFile(io.BytesIO(body))
    assert archive.testzip() is None
    return sorted(name.split("-", 1)[1] for name in archive.namelist())


def test_first_request_waits_then_the_built_archive_is_served(
    guest, event, event_photos, builds, django_capture_on_commit_callbacks
):
    first = request_zip(guest, event, django_capture_on_commit_callbacks)
    assert first.status_code == 302
    assert first["Location"] == page_url(event)
    assert len(builds) == 1
    archive = PhotoArchive.objects.get()
    assert archive.status == ArchiveStatus.READY
    assert archive.file.name.startswith(f"events/{event.pk}/archives/")
    assert sorted(archive.photo_ids) == sorted([event_photos["p0.png"].pk, event_photos["p3.png"].pk])
    assert json.loads(guest.get(status_url(event)).content) == {"status": "ready"}
    page = guest.get(page_url(event)).content.decode()
    assert "Your ZIP is ready." in page
    assert 'http-equiv="refresh"' not in page

    answer = media_answer(guest.get(zip_url(event)))
    assert answer.status == 200
    assert answer.headers["content-disposition"] == 'attachment; filename="wedding-my-photos.zip"'
    assert zip_names(answer.body) == ["p0.png", "p3.png"]
    for info in zipfile.ZipFile(io.BytesIO(answer.body)).infolist():
        with event_photos[info.filename.split("-", 1)[1]].original.open("rb") as stored:
            assert zipfile.ZipFile(io.BytesIO(answer.body)).read(info) == stored.read()


@on_local_storage
def test_local_archive_is_streamed_without_a_proxy_and_handed_to_nginx_with_one(
    guest, event, event_photos, settings, django_capture_on_commit_callbacks
):
    request_zip(guest, event, django_capture_on_commit_callbacks)
    archive = PhotoArchive.objects.get()
    streamed = guest.get(zip_url(event))
    assert streamed.streaming
    assert b"".join(streamed.streaming_content) == archive.file.open("rb").read()

    settings.MEDIA_ACCEL = "nginx"
    handed = guest.get(zip_url(event))
    assert handed.status_code == 200
    assert handed.content == b""
    assert handed["X-Accel-Redirect"] == f"/protected-media/{archive.file.name}"
    assert handed["Content-Type"] == "application/zip"
    assert handed["Content-Disposition"] == 'attachment; filename="wedding-my-photos.zip"'
    assert handed["Cache-Control"] == "private, no-store"


def test_asking_again_for_the_same_photos_builds_nothing(guest, event, builds, django_capture_on_commit_callbacks):
    request_zip(guest, event, django_capture_on_commit_callbacks)
    built = PhotoArchive.objects.get()
    for _ in range(3):
        assert media_answer(request_zip(guest, event, django_capture_on_commit_callbacks)).status == 200
    assert len(builds) == 1
    assert list(PhotoArchive.objects.values_list("pk", "file")) == [(built.pk, built.file.name)]


def test_a_new_photo_set_makes_a_new_archive_and_deletes_the_old_one(
    guest, member, event, event_photos, builds, django_capture_on_commit_callbacks
):
    request_zip(guest, event, django_capture_on_commit_callbacks)
    old = PhotoArchive.objects.get()
    assert default_storage.exists(old.file.name)
    # "Not me" on one photo: the set of my photos shrinks.
    with django_capture_on_commit_callbacks(execute=True):
        Match.objects.filter(user=member, photo=event_photos["p3.png"]).delete()
        event.bump_version()

    assert request_zip(guest, event, django_capture_on_commit_callbacks).status_code == 302
    new = PhotoArchive.objects.get()
    assert new.pk != old.pk
    assert new.photos_key != old.photos_key
    assert len(builds) == 2
    assert not default_storage.exists(old.file.name)
    assert zip_names(media_answer(guest.get(zip_url(event))).body) == ["p0.png"]


def test_another_user_never_reaches_the_archive(
    guest, page_client, make_user, attendee, event, event_photos, django_capture_on_commit_callbacks
):
    request_zip(guest, event, django_capture_on_commit_callbacks)
    stranger = page_client(make_user("stranger"))
    for url in (zip_url(event), page_url(event), status_url(event)):
        answer = stranger.get(url)
        assert answer.status_code == 404, url
        assert "X-Accel-Redirect" not in answer and "Location" not in answer
    # Another member of the event has no archive of their own and never sees the first one.
    other = make_user("other-member")
    Membership.objects.create(user=other, event=event)
    member_client = page_client(other)
    assert member_client.get(status_url(event)).status_code == 404
    assert member_client.get(page_url(event))["Location"] == reverse("gallery-my-photos", args=[event.pk])


def test_own_photos_events_still_need_the_live_selfie(guest, member, event, django_capture_on_commit_callbacks):
    event.visibility = EventVisibility.OWN
    event.save()
    refused = request_zip(guest, event, django_capture_on_commit_callbacks)
    assert refused["Location"] == reverse("gallery-my-photos", args=[event.pk])
    assert not PhotoArchive.objects.exists()
    Selfie.objects.filter(user=member).update(live_verified_at=timezone.now())
    assert request_zip(guest, event, django_capture_on_commit_callbacks)["Location"] == page_url(event)
    assert PhotoArchive.objects.get().status == ArchiveStatus.READY


def test_waiting_page_refreshes_without_javascript_and_loads_the_poller(guest, member, event, event_photos):
    # Not built: the task is not run (its commit never comes in this test's transaction).
    assert guest.get(zip_url(event))["Location"] == page_url(event)
    assert PhotoArchive.objects.get().status == ArchiveStatus.PENDING
    page = guest.get(page_url(event)).content.decode()
    assert '<meta http-equiv="refresh" content="10">' in page
    assert "Preparing your ZIP of 2 photos…" in page
    assert "js/archive-status.js" in page
    assert "<script>" not in page and "style=" not in page
    assert json.loads(guest.get(status_url(event)).content) == {"status": "pending"}


def test_a_failing_build_is_retried_with_backoff_then_shown_failed_and_asked_again(
    guest, event, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk full")

    # Not monkeypatch.undo(): it would also undo the sync queue of the autouse fixture.
    with monkeypatch.context() as patched:
        patched.setattr(default_storage, "save", broken)
        # The jitter draws its smallest delay: the retry still waits half the base.
        patched.setattr(random, "uniform", lambda low, high: low)
        before = timezone.now()
        request_zip(guest, event, django_capture_on_commit_callbacks)
        archive = PhotoArchive.objects.get()
        assert (archive.status, archive.attempts) == (ArchiveStatus.PENDING, 1)
        assert "disk full" in archive.error
        retry = Schedule.objects.get(func=archives.BUILD_ARCHIVE)
        assert retry.next_run >= before + timedelta(seconds=archives.ARCHIVE_RETRY_BASE_DELAY / 2)
        for _ in range(archives.ARCHIVE_MAX_ATTEMPTS - 1):
            archives.build_archive(archive.pk)
        archive.refresh_from_db()
        assert (archive.status, archive.attempts) == (ArchiveStatus.FAILED, archives.ARCHIVE_MAX_ATTEMPTS)
        assert "Your ZIP could not be prepared." in guest.get(page_url(event)).content.decode()
        assert json.loads(guest.get(status_url(event)).content) == {"status": "failed"}

    request_zip(guest, event, django_capture_on_commit_callbacks)
    archive.refresh_from_db()
    assert (archive.status, archive.error) == (ArchiveStatus.READY, "")


def test_a_duplicate_delivery_finds_nothing_to_do(guest, event, django_capture_on_commit_callbacks):
    request_zip(guest, event, django_capture_on_commit_callbacks)
    archive = PhotoArchive.objects.get()
    assert archives.build_archive(archive.pk) == "nothing to do"
    assert PhotoArchive.objects.get().file.name == archive.file.name


def test_staff_see_failed_archives_in_the_admin(page_client, staff, guest, event, django_capture_on_commit_callbacks):
    request_zip(guest, event, django_capture_on_commit_callbacks)
    PhotoArchive.objects.update(status=ArchiveStatus.FAILED, error="OSError: disk full")
    staff.is_superuser = True
    staff.save()
    listing = page_client(staff).get(reverse("admin:gallery_photoarchive_changelist") + "?status=failed")
    assert listing.status_code == 200
    assert "OSError: disk full" in listing.content.decode()


def test_old_archives_and_their_files_are_swept(guest, event, django_capture_on_commit_callbacks):
    assert "processing.archives.delete_old_archives" in {func for func, _ in SCHEDULES.values()}
    request_zip(guest, event, django_capture_on_commit_callbacks)
    archive = PhotoArchive.objects.get()
    assert archives.delete_old_archives() == 0
    PhotoArchive.objects.update(finished_at=timezone.now() - timedelta(hours=settings.ARCHIVE_TTL_HOURS + 1))
    with django_capture_on_commit_callbacks(execute=True):
        assert archives.delete_old_archives() == 1
    assert not PhotoArchive.objects.exists()
    assert not default_storage.exists(archive.file.name)


def test_deleting_the_event_deletes_its_archives_files(guest, event, django_capture_on_commit_callbacks):
    request_zip(guest, event, django_capture_on_commit_callbacks)
    name = PhotoArchive.objects.get().file.name
    assert default_storage.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        delete_event(event)
    assert not PhotoArchive.objects.exists()
    assert not default_storage.exists(name)


def test_a_watermarked_event_builds_watermarked_copies_and_a_new_archive_when_originals_are_allowed(
    client_for, photographer, guest, event, event_photos, django_capture_on_commit_callbacks
):
    owner = client_for(photographer)
    put_watermark(owner, event, TEXT_MARK, django_capture_on_commit_callbacks)
    request_zip(guest, event, django_capture_on_commit_callbacks)
    marked = media_answer(guest.get(zip_url(event))).body
    assert zip_names(marked) == ["p0.jpg", "p3.jpg"]
    archive = zipfile.ZipFile(io.BytesIO(marked))
    for name in archive.namelist():
        assert_marked(archive.read(name), event_photos[name.split("-", 1)[1].replace(".jpg", ".png")])

    put_watermark(owner, event, {"guests_get_originals": True}, django_capture_on_commit_callbacks)
    assert request_zip(guest, event, django_capture_on_commit_callbacks).status_code == 302
    assert zip_names(media_answer(guest.get(zip_url(event))).body) == ["p0.png", "p3.png"]
    assert PhotoArchive.objects.count() == 1
