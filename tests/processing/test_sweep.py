"""The orphan sweep of Rekognition collections, against a real botocore client driven by Stubber."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gallery.models import Event, Face, Photo
from processing import backends, sweep
from processing.costs import usage_summary
from processing.metrics import ORPHAN_SWEEP
from processing.models import FaceServiceUsage, RekognitionSelfieFace
from processing.queue_startup import SCHEDULES
from tests.processing.aws_stubs import face_id
from tests.processing.test_rekognition_backend import make_selfie

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_aws_settings")]


def stored_face(event: Event, external_id: str) -> Face:
    photo = Photo.objects.create(event=event, filename="p.jpg", sha256=external_id, format="JPEG")
    return Face.objects.create(photo=photo, event=event, left=0, top=0, width=1, height=1, external_id=external_id)


def test_orphans_are_deleted_once_orphaned_for_an_hour(aws: Any, event: Any, member: Any) -> None:
    photo_face, selfie_face, lost, lost_in_user, saved_late = sorted(face_id() for _ in range(5))
    stored_face(event, photo_face)
    RekognitionSelfieFace.objects.create(selfie=make_selfie(member), event=event, face_id=selfie_face)
    ours = aws.collection(event.pk)
    started = timezone.now()

    def listing(*faces: tuple[str, str]) -> None:
        # Both listings paginated; another application's collection is left alone.
        aws.list_collections(["someone-elses-collection"], next_token="c2")
        aws.list_collections([ours], token="c2")
        aws.list_faces(event.pk, list(faces[:2]), next_token="f2")
        aws.list_faces(event.pk, list(faces[2:]), token="f2")

    everything = [
        (photo_face, ""),
        (selfie_face, f"user-{member.pk}"),
        (lost, ""),
        (lost_in_user, f"user-{member.pk}"),
        (saved_late, ""),
    ]
    # First sighting, then half an hour later: orphans are only noted.
    for minutes in (0, 30):
        listing(*everything)
        aws.list_users(event.pk, [f"user-{member.pk}"])
        assert sweep.sweep_orphan_faces(now=started + timedelta(minutes=minutes)) == 0
    # A job saves its row late: that face is no orphan any more.
    stored_face(event, saved_late)
    # An hour after the first sighting: deleted, the one in a user disassociated first.
    listing(*everything)
    aws.delete_faces(event.pk, sorted([lost, lost_in_user]), associated={lost_in_user: f"user-{member.pk}"})
    aws.disassociate_faces(event.pk, member.pk, [lost_in_user])
    aws.delete_faces(event.pk, [lost_in_user])
    aws.list_users(event.pk, [f"user-{member.pk}"])
    assert sweep.sweep_orphan_faces(now=started + timedelta(minutes=61)) == 2
    aws.done()

    row = FaceServiceUsage.objects.get(operation=ORPHAN_SWEEP)
    assert (row.event_id, row.faces_deleted, row.images) == (event.pk, 2, 0)
    assert usage_summary()["orphan_faces_deleted"] == {"today": 2, "7d": 2, "30d": 2}
    assert FaceServiceUsage.objects.get(operation="ListFaces").images == 0


def test_a_face_that_gains_its_row_before_the_hour_is_kept(aws: Any, event: Any) -> None:
    late = face_id()
    started = timezone.now()
    aws.list_collections([aws.collection(event.pk)])
    aws.list_faces(event.pk, [(late, "")])
    aws.list_users(event.pk, [])
    assert sweep.sweep_orphan_faces(now=started) == 0
    stored_face(event, late)
    aws.list_collections([aws.collection(event.pk)])
    aws.list_faces(event.pk, [(late, "")])
    aws.list_users(event.pk, [])
    assert sweep.sweep_orphan_faces(now=started + timedelta(hours=2)) == 0
    aws.done()
    assert not FaceServiceUsage.objects.filter(operation="DeleteFaces").exists()


def test_the_collection_of_a_deleted_event_is_emptied_then_deleted(aws: Any) -> None:
    # An event whose deletion did not reach AWS.
    gone_id = 987654
    assert not Event.objects.filter(pk=gone_id).exists()
    left = face_id()
    started = timezone.now()
    aws.list_collections([aws.collection(gone_id)])
    aws.list_faces(gone_id, [(left, "")])
    aws.list_users(gone_id, [])
    assert sweep.sweep_orphan_faces(now=started) == 0
    aws.list_collections([aws.collection(gone_id)])
    aws.list_faces(gone_id, [(left, "")])
    aws.delete_faces(gone_id, [left])
    aws.list_users(gone_id, [])
    aws.delete_collection(gone_id)
    assert sweep.sweep_orphan_faces(now=started + timedelta(hours=1)) == 1
    aws.done()


def test_a_collection_gone_meanwhile_is_skipped(aws: Any, event: Any) -> None:
    aws.list_collections([aws.collection(event.pk)])
    aws.stubber.add_client_error("list_faces", "ResourceNotFoundException")
    aws.stubber.add_client_error("list_users", "ResourceNotFoundException")
    assert sweep.sweep_orphan_faces() == 0
    aws.done()


def test_users_of_attendees_without_an_indexed_selfie_go_after_an_hour(aws: Any, event: Any, member: Any) -> None:
    RekognitionSelfieFace.objects.create(selfie=make_selfie(member), event=event, face_id=face_id())
    started = timezone.now()
    for _sweep in range(2):
        aws.list_collections([aws.collection(event.pk)])
        aws.list_faces(event.pk, [])
        aws.list_users(event.pk, [f"user-{member.pk}"], next_token="u2")
        aws.list_users(event.pk, ["user-4242", "not-ours"], token="u2")
    aws.delete_user(event.pk, 4242)
    sweep.sweep_orphan_faces(now=started)
    sweep.sweep_orphan_faces(now=started + timedelta(minutes=61))
    aws.done()
    assert FaceServiceUsage.objects.get(operation="DeleteUser").calls == 1


def test_the_local_backend_has_nothing_to_sweep(settings: Any) -> None:
    settings.FACE_BACKEND = "local"
    backends.get_backend.cache_clear()
    try:
        assert sweep.sweep_orphan_faces() == 0
    finally:
        backends.get_backend.cache_clear()
    assert not FaceServiceUsage.objects.exists()


def test_the_sweep_is_scheduled() -> None:
    func, minutes = SCHEDULES["photoevent-sweep-orphan-faces"]
    assert func == "processing.sweep.sweep_orphan_faces" and minutes == sweep.SWEEP_INTERVAL_MINUTES
