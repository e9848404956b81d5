"""Deletions through processing.services: the backend forgets after the commit, and again later if it failed."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.base import ContentFile

from gallery.models import Event, Face, Photo
from processing import services, tasks
from processing.backends.base import TransientBackendError
from tests.fakes import scene_png

pytestmark = pytest.mark.django_db


def stored_photo(event: Event) -> Photo:
    photo = Photo(event=event, filename="p.png", sha256="sha", format="PNG")
    photo.original.save("p.png", ContentFile(scene_png([0])), save=False)
    photo.save()
    for n in range(2):
        Face.objects.create(photo=photo, event=event, left=0, top=0, width=1, height=1, external_id=f"ext-{n}")
    return photo


def test_a_photo_goes_at_once_and_its_faces_leave_the_backend_after_the_commit(
    event: Event, fake_backend: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    photo = stored_photo(event)
    forgotten: list[list[str]] = []
    monkeypatch.setattr(fake_backend, "forget_faces", lambda e, faces: forgotten.append([f.external_id for f in faces]))
    with django_capture_on_commit_callbacks() as callbacks:
        services.delete_photo(photo)
        assert forgotten == []  # not before the commit
    assert not Photo.objects.filter(pk=photo.pk).exists()
    for callback in callbacks:
        callback()
    assert forgotten == [["ext-0", "ext-1"]]


def test_a_backend_that_does_not_answer_is_asked_again_by_the_queue(
    event: Event, fake_backend: Any, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks: Any
) -> None:
    photo = stored_photo(event)
    scheduled: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks, "schedule", lambda *args, **kwargs: scheduled.append(args))

    def down(*args: Any) -> None:
        raise TransientBackendError("timeout")

    monkeypatch.setattr(fake_backend, "forget_faces", down)
    monkeypatch.setattr(fake_backend, "forget_event", down)
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_photo(photo)
    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert scheduled == [(tasks.FORGET_FACES, event.pk, ["ext-0", "ext-1"], 1)]
    # The retry fails too: it schedules the next attempt; then the backend answers.
    tasks.forget_backend_faces(event.pk, ["ext-0", "ext-1"], 1)
    assert scheduled[-1] == (tasks.FORGET_FACES, event.pk, ["ext-0", "ext-1"], 2)
    answered: list[str] = []
    monkeypatch.setattr(fake_backend, "forget_faces", lambda e, faces: answered.extend(f.external_id for f in faces))
    tasks.forget_backend_faces(event.pk, ["ext-0", "ext-1"], 2)
    assert answered == ["ext-0", "ext-1"] and len(scheduled) == 2

    event_id = event.pk
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_event(event)
    assert scheduled[-1] == (tasks.FORGET_EVENT, event_id, 1)
    assert not Event.objects.filter(pk=event_id).exists()


def test_cleanup_retries_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    scheduled: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks, "schedule", lambda *args, **kwargs: scheduled.append(args))
    tasks.forget_event_later(1, attempt=tasks.CLEANUP_MAX_ATTEMPTS)
    tasks.forget_event_later(1, attempt=tasks.CLEANUP_MAX_ATTEMPTS + 1)
    assert len(scheduled) == 1
