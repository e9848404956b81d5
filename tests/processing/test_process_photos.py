"""The process_photos task, run in-process (django-q2 sync mode)."""

import io
import logging

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from gallery.models import Face, Match, Membership, Photo, PhotoStatus, Selfie
from processing import tasks
from processing.backends.base import PermanentBackendError, TransientBackendError
from tests.fakes import scene_png

pytestmark = pytest.mark.django_db


def make_photo(event, data: bytes, name: str = "p.png") -> Photo:
    photo = Photo(event=event, filename=name, sha256=str(hash(data)), format="PNG")
    photo.original.save(name, ContentFile(data), save=False)
    photo.save()
    return photo


@pytest.fixture
def enrolled(member, event, fake_backend):
    from tests.fakes import marker_faces

    face = marker_faces(Image.open(io.BytesIO(scene_png([0]))))[0]
    Selfie.objects.create(user=member, embedding=face.embedding.tobytes(), image="selfies/x.jpg")
    return member


def test_process_stores_faces_renditions_and_matches(event, enrolled, caplog):
    photo = make_photo(event, scene_png([0, 1]))
    caplog.set_level(logging.INFO, logger="processing.queue")
    assert tasks.process_photos([photo.pk]) == {photo.pk: "done"}
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.DONE
    assert photo.face_count == 2 and photo.attempts == 1
    assert photo.thumbnail.name.startswith(f"events/{event.pk}/thumbs/")
    assert Image.open(photo.web.open("rb")).size == (640, 480)
    assert max(Image.open(photo.thumbnail.open("rb")).size) == 400
    face = photo.faces.order_by("left").first()
    assert face.left == pytest.approx(20 / 640) and face.width == pytest.approx(60 / 640)
    assert list(Match.objects.values_list("user_id", "photo_id")) == [(enrolled.pk, photo.pk)]
    assert f"Processing job {photo.pk}: p.png" in caplog.text
    assert f"Job {photo.pk} completed: {photo.original.name}" in caplog.text


def test_reprocessing_is_idempotent(event, enrolled):
    photo = make_photo(event, scene_png([0, 1]))
    tasks.process_photos([photo.pk])
    first = (sorted(Face.objects.values_list("left", "top", "width", "height")), Match.objects.count())
    Photo.objects.filter(pk=photo.pk).update(status=PhotoStatus.QUEUED)
    tasks.process_photos([photo.pk])
    second = (sorted(Face.objects.values_list("left", "top", "width", "height")), Match.objects.count())
    assert first == second
    assert Face.objects.count() == 2 and Match.objects.count() == 1


def test_a_claimed_photo_is_not_processed_twice(event, fake_backend):
    photo = make_photo(event, scene_png([0]))
    assert tasks.claim_photo(photo.pk, "1") is not None
    assert tasks.claim_photo(photo.pk, "2") is None
    assert tasks.process_photos([photo.pk]) == {photo.pk: "skipped"}


def test_a_duplicate_delivery_of_a_done_photo_does_nothing(event, fake_backend):
    photo = make_photo(event, scene_png([0]))
    tasks.process_photos([photo.pk])
    assert tasks.process_photos([photo.pk]) == {photo.pk: "skipped"}
    assert Photo.objects.get(pk=photo.pk).attempts == 1


def test_corrupt_file_fails_with_reason_without_crashing(event, fake_backend, caplog):
    bad = make_photo(event, b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "bad.png")
    good = make_photo(event, scene_png([1]), "good.png")
    assert tasks.process_photos([bad.pk, good.pk]) == {bad.pk: "failed", good.pk: "done"}
    bad.refresh_from_db()
    assert bad.status == PhotoStatus.FAILED
    assert "damaged" in bad.error or "not an image" in bad.error
    assert bad.failed_at is not None and bad.attempts == 1
    assert "failed" in caplog.text


def test_permanent_backend_error_fails_at_once(event, fake_backend, monkeypatch):
    photo = make_photo(event, scene_png([0]))

    def refuse(*args, **kwargs):
        raise PermanentBackendError("unsupported image")

    monkeypatch.setattr(type(fake_backend), "index_photo", refuse)
    assert tasks.process_photos([photo.pk]) == {photo.pk: "failed"}
    assert Photo.objects.get(pk=photo.pk).error == "unsupported image"


def test_transient_error_is_retried_then_gives_up(event, fake_backend, monkeypatch, settings):
    settings.PHOTO_QUEUE_MAX_RETRIES = 2
    settings.PHOTO_RETRY_BASE_DELAY = 0
    photo = make_photo(event, scene_png([0]))
    scheduled = []
    monkeypatch.setattr(tasks, "schedule", lambda *a, **k: scheduled.append(k["next_run"]))

    def throttle(*args, **kwargs):
        raise TransientBackendError("throttled")

    monkeypatch.setattr(type(fake_backend), "index_photo", throttle)
    assert tasks.process_photos([photo.pk]) == {photo.pk: "retrying"}
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.QUEUED and photo.attempts == 1 and "throttled" in photo.error
    assert len(scheduled) == 1
    assert tasks.process_photos([photo.pk]) == {photo.pk: "failed"}
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.FAILED and photo.attempts == 2
    assert "gave up after 2 attempts" in photo.error


def test_transient_error_then_success(event, fake_backend, monkeypatch, settings):
    settings.PHOTO_RETRY_BASE_DELAY = 0
    photo = make_photo(event, scene_png([0]))
    monkeypatch.setattr(tasks, "schedule", lambda *a, **k: None)
    real = type(fake_backend).index_photo
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise TransientBackendError("timeout")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(fake_backend), "index_photo", flaky)
    tasks.process_photos([photo.pk])
    tasks.process_photos([photo.pk])
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.DONE and photo.attempts == 2 and photo.error == ""


def test_retry_delay_grows_with_attempts(settings):
    settings.PHOTO_RETRY_BASE_DELAY = 2.0
    assert all(1.0 <= tasks.retry_delay(1) <= 2.0 for _ in range(50))
    assert max(tasks.retry_delay(4) for _ in range(200)) > 8.0


def test_stalled_photo_is_recovered(event, fake_backend, settings):
    photo = make_photo(event, scene_png([0]))
    tasks.claim_photo(photo.pk, "dead")
    Photo.objects.filter(pk=photo.pk).update(started_at=timezone.now() - timezone.timedelta(hours=1))
    assert tasks.recover_stalled_photos() == 1
    photo.refresh_from_db()
    # In sync mode the recovery's enqueue runs the task at once.
    assert photo.status == PhotoStatus.DONE


def test_photos_whose_task_could_not_be_sent_are_left_for_the_recovery_sweep(event, fake_backend, monkeypatch):
    photo = make_photo(event, scene_png([0]))
    send = tasks.async_task

    def broker_down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks, "async_task", broker_down)
    with pytest.raises(ConnectionError):
        tasks.enqueue_photos([photo.pk])
    # Not marked as dispatched: the sweep sends it at once, not `retry` seconds later.
    assert Photo.objects.get(pk=photo.pk).dispatched_at is None
    monkeypatch.setattr(tasks, "async_task", send)
    assert tasks.recover_stalled_photos() == 1
    assert Photo.objects.get(pk=photo.pk).status == PhotoStatus.DONE


def test_member_without_consent_is_not_matched(event, member, fake_backend):
    from tests.fakes import marker_faces

    member.attendee.face_consent_at = None
    member.attendee.save()
    face = marker_faces(Image.open(io.BytesIO(scene_png([0]))))[0]
    Selfie.objects.create(user=member, embedding=face.embedding.tobytes(), image="selfies/x.jpg")
    assert Membership.objects.filter(user=member).exists()
    photo = make_photo(event, scene_png([0]))
    tasks.process_photos([photo.pk])
    assert Match.objects.count() == 0


def test_photo_of_a_dead_local_worker_is_recovered_at_once(event, fake_backend):
    import subprocess

    photo = make_photo(event, scene_png([0]))
    gone = subprocess.Popen(["true"])
    gone.wait()
    tasks.claim_photo(photo.pk, f"{tasks.socket.gethostname()}:{gone.pid}")
    assert tasks.recover_stalled_photos() == 1
    assert Photo.objects.get(pk=photo.pk).status == PhotoStatus.DONE


def test_photo_of_a_live_worker_is_left_alone(event, fake_backend):
    photo = make_photo(event, scene_png([0]))
    tasks.claim_photo(photo.pk, tasks.worker_identity())
    assert tasks.recover_stalled_photos() == 0
    assert Photo.objects.get(pk=photo.pk).status == PhotoStatus.PROCESSING


def rendition_names(photo):
    return [f"events/{photo.event_id}/{kind}/{photo.job_id.hex}.jpg" for kind in ("thumbs", "web")]


@pytest.mark.parametrize("then", ["finishes", "fails"])
def test_a_photo_deleted_mid_batch_is_skipped_and_the_batch_completes(
    event, fake_backend, monkeypatch, caplog, django_capture_on_commit_callbacks, then
):
    """Issue 15, row 5: deleting one photo of a batch while it is processed."""
    from django.core.files.storage import default_storage

    from processing import services

    first, doomed, last = (make_photo(event, scene_png([n]), f"p{n}.png") for n in range(3))
    real = type(fake_backend).index_photo

    def delete_meanwhile(self, photo, image):
        result = real(self, photo, image)
        if photo.pk == doomed.pk:
            # The renditions are written by now; the photographer deletes the photo.
            assert all(default_storage.exists(name) for name in rendition_names(doomed))
            with django_capture_on_commit_callbacks(execute=True):
                services.delete_photo(Photo.objects.get(pk=doomed.pk))
            if then == "fails":
                raise TransientBackendError("the service went away too")
        return result

    monkeypatch.setattr(type(fake_backend), "index_photo", delete_meanwhile)
    caplog.set_level(logging.INFO, logger="processing.queue")
    outcomes = tasks.process_photos([first.pk, doomed.pk, last.pk])
    assert outcomes == {first.pk: "done", doomed.pk: "skipped", last.pk: "done"}
    assert set(Photo.objects.values_list("status", flat=True)) == {PhotoStatus.DONE}
    assert not Face.objects.filter(photo_id=doomed.pk).exists()
    assert not any(default_storage.exists(name) for name in rendition_names(doomed))
    assert all(default_storage.exists(name) for name in rendition_names(last))
    assert f"Job {doomed.pk} skipped: the photo was deleted" in caplog.text


def test_a_photo_deleted_before_its_task_runs_is_skipped(event, fake_backend, caplog):
    gone, kept = make_photo(event, scene_png([0]), "gone.png"), make_photo(event, scene_png([1]), "kept.png")
    gone_pk = gone.pk
    gone.delete()
    caplog.set_level(logging.INFO, logger="processing.queue")
    assert tasks.process_photos([gone_pk, kept.pk]) == {gone_pk: "skipped", kept.pk: "done"}
