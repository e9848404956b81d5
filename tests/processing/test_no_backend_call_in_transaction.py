"""No face-backend call happens inside a database transaction, on any path.

The tests run on a real (transactional) database, so `in_atomic_block` is
true only inside transactions the code itself opens. The guard backend
records every call and whether a transaction was open at that moment.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from gallery.models import AttendeeProfile, Event, Face, Match, Membership, Photo, PhotoStatus, Selfie
from processing import backends, pipeline, services, tasks
from processing.retention import purge_inactive_face_data
from tests.conftest import png_upload
from tests.fakes import FakeBackend, scene_png

pytestmark = pytest.mark.django_db(transaction=True)

GUARDED = (
    "index_photo",
    "enrol_selfie",
    "match_faces",
    "match_reference",
    "match_event",
    "forget_faces",
    "forget_selfie",
    "forget_event",
)


class AtomicGuardBackend(FakeBackend):
    """The marker backend, noting each call and whether it ran inside `atomic()`."""

    calls: list[str] = []
    inside_atomic: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        attribute = super().__getattribute__(name)
        if name not in GUARDED:
            return attribute

        def guarded(*args: Any, **kwargs: Any) -> Any:
            AtomicGuardBackend.calls.append(name)
            if connection.in_atomic_block:
                AtomicGuardBackend.inside_atomic.append(name)
            return attribute(*args, **kwargs)

        return guarded


@pytest.fixture
def guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[AtomicGuardBackend]]:
    monkeypatch.setitem(backends.BACKENDS, "local", f"{__name__}.AtomicGuardBackend")
    monkeypatch.setattr(AtomicGuardBackend, "calls", [])
    monkeypatch.setattr(AtomicGuardBackend, "inside_atomic", [])
    backends.get_backend.cache_clear()
    yield AtomicGuardBackend
    backends.get_backend.cache_clear()


def add_photo(event: Event, people: list[int], seed: int) -> Photo:
    data = scene_png(people, seed=seed)
    photo = Photo(event=event, filename=f"p{seed}.png", sha256=f"sha-{seed}", format="PNG")
    photo.original.save(photo.filename, ContentFile(data), save=False)
    photo.save()
    return photo


def enrol(user: User, people: list[int]) -> Selfie:
    selfie, _ = pipeline.enrol_selfie(user, png_upload("me.png", scene_png(people)))
    return selfie


@pytest.fixture
def scene(event: Event, member: User) -> tuple[Event, User, list[Photo]]:
    return event, member, [add_photo(event, people, seed) for seed, people in enumerate([[0, 1], [1], [0]])]


def assert_guarded(guard: type[AtomicGuardBackend], *expected: str) -> None:
    assert guard.inside_atomic == [], f"backend calls inside a transaction: {guard.inside_atomic}"
    missing = [name for name in expected if name not in guard.calls]
    assert not missing, f"the scenario never called {missing}; calls: {guard.calls}"


def test_the_guard_sees_a_call_inside_a_transaction(guard: type[AtomicGuardBackend], event: Event) -> None:
    with transaction.atomic():
        backends.get_backend().forget_event(event)
    assert guard.inside_atomic == ["forget_event"]


@pytest.mark.parametrize("strategy", ["event", "threshold"])
def test_processing_enrolling_and_refreshing(
    guard: type[AtomicGuardBackend], scene: Any, settings: Any, strategy: str
) -> None:
    settings.FACE_MATCH_STRATEGY = strategy
    settings.MAX_SELFIES = 1
    event, member, photos = scene
    tasks.process_photos([photos[0].pk])
    enrol(member, [0])
    tasks.process_photos([p.pk for p in photos[1:]])
    assert Photo.objects.filter(status=PhotoStatus.DONE).count() == 3
    assert set(Match.objects.filter(user=member).values_list("photo_id", flat=True)) == {photos[0].pk, photos[2].pk}
    # A reprocessing replaces the photo's faces, and the backend forgets the old ones.
    Face.objects.filter(photo=photos[0]).update(external_id="old")
    Photo.objects.filter(pk=photos[0].pk).update(status=PhotoStatus.QUEUED)
    tasks.process_photos([photos[0].pk])
    pipeline.refresh_event_matches(event)
    pipeline.refresh_member_matches(member, event)
    enrol(member, [0])  # replaces the first selfie
    tasks.refresh_event(event.pk)
    assert_guarded(guard, "index_photo", "match_faces", "enrol_selfie", "match_event", "forget_faces", "forget_selfie")


def test_incremental_backend_refresh(guard: type[AtomicGuardBackend], scene: Any, monkeypatch: Any) -> None:
    event, member, photos = scene
    tasks.process_photos([p.pk for p in photos])
    enrol(member, [0])
    # As with a backend that only matches incrementally: the answer comes from match_reference.
    monkeypatch.setattr(pipeline, "refresh_event_matches", lambda *args, **kwargs: False)
    assert pipeline.refresh_member_matches(member, event) == 2
    assert_guarded(guard, "match_reference")


def test_every_deletion_path(guard: type[AtomicGuardBackend], scene: Any, make_user: Any) -> None:
    event, member, photos = scene
    tasks.process_photos([p.pk for p in photos])
    enrol(member, [0])
    Face.objects.update(external_id="stored-at-the-backend")

    services.delete_photo(photos[1])
    pipeline.delete_selfie(Selfie.objects.get(user=member))
    enrol(member, [0])
    services.forget_attendee(member)
    enrol(member, [0])
    AttendeeProfile.objects.filter(user=member).update(last_active_at=timezone.now() - timedelta(days=4000))
    assert purge_inactive_face_data() == 1
    enrol(member, [0])
    services.delete_account(member)
    services.delete_event(event)
    assert not Event.objects.exists() and not Selfie.objects.exists()
    assert_guarded(guard, "forget_faces", "forget_selfie", "forget_event")


def test_admin_deletions(guard: type[AtomicGuardBackend], scene: Any, make_user: Any) -> None:
    event, member, photos = scene
    tasks.process_photos([p.pk for p in photos])
    selfie = enrol(member, [0])
    Face.objects.update(external_id="stored-at-the-backend")
    staff = make_user("admin", staff=True)
    staff.is_superuser = True
    staff.save()
    admin = Client()
    admin.force_login(staff)

    def delete(model: str, pk: int) -> None:
        response = admin.post(f"/admin/gallery/{model}/{pk}/delete/", {"post": "yes"})
        assert response.status_code == 302, response.content[:500]

    delete("photo", photos[0].pk)
    delete("selfie", selfie.pk)
    guest = make_user("guest")
    Membership.objects.create(user=guest, event=event)
    enrol(guest, [1])
    response = admin.post(
        "/admin/auth/user/", {"action": "delete_selected", "_selected_action": [guest.pk], "post": "yes"}
    )
    assert response.status_code == 302
    delete("event", event.pk)
    assert not Photo.objects.exists() and not Selfie.objects.exists()
    assert not User.objects.filter(pk=guest.pk).exists()
    assert_guarded(guard, "forget_faces", "forget_selfie", "forget_event")
