"""The Rekognition backend against a real botocore client driven by Stubber."""

from __future__ import annotations

import io
import random
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import (
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from gallery.models import Face, Match, Membership, Photo, PhotoStatus, Selfie
from processing import pipeline, services, tasks
from processing.backends import rekognition
from processing.backends.base import (
    DetectedFace,
    NoFaceError,
    PermanentBackendError,
    Reference,
    TransientBackendError,
)
from processing.backends.rekognition import MAX_IMAGE_BYTES, encode_image, pixel_box, translate_error
from processing.checks import check_rekognition
from processing.models import FaceServiceUsage, RekognitionSelfieFace
from tests.processing.aws_stubs import box, face_id

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_aws_settings")]


def jpeg(size: tuple[int, int] = (800, 600), colour: tuple[int, int, int] = (90, 120, 150)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def make_photo(event: Any, size: tuple[int, int] = (800, 600), seed: int = 0) -> Photo:
    data = jpeg(size, (seed % 255, 100, 100))
    photo = Photo(event=event, filename=f"p{seed}.jpg", sha256=f"sha-{seed}", format="JPEG")
    photo.original.save("p.jpg", ContentFile(data), save=False)
    photo.save()
    return photo


def make_selfie(user: Any) -> Selfie:
    selfie = Selfie(user=user, external_id=f"selfie-{user.pk}", faces_found=1)
    selfie.image.save("selfie.jpg", ContentFile(jpeg((400, 400))), save=True)
    return selfie


def usage(operation: str) -> FaceServiceUsage:
    return FaceServiceUsage.objects.get(backend="rekognition", operation=operation)


# --- pure helpers -----------------------------------------------------------


def test_relative_boxes_become_pixels_clamped_to_the_image() -> None:
    assert pixel_box(box(0.25, 0.5, 0.5, 0.25), 800, 600) == (200, 300, 400, 150)
    # Rekognition reports faces cut by the frame with boxes outside 0..1.
    assert pixel_box(box(-0.1, 0.9, 0.3, 0.3), 800, 600) == (0, 540, 160, 60)


def test_image_is_jpeg_under_the_limit_even_for_noise() -> None:
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (1600, 1600, 3), dtype=np.uint8))
    data = encode_image(noise, limit=400_000)
    assert data[:3] == b"\xff\xd8\xff" and len(data) <= 400_000
    assert len(encode_image(noise)) <= MAX_IMAGE_BYTES


@pytest.mark.parametrize(
    ("exc", "kind", "retried_here"),
    [
        (ConnectTimeoutError(endpoint_url="https://x"), TransientBackendError, True),
        (EndpointConnectionError(endpoint_url="https://x"), TransientBackendError, True),
        (ReadTimeoutError(endpoint_url="https://x"), TransientBackendError, False),
        (NoCredentialsError(), PermanentBackendError, False),
    ],
)
def test_network_and_credential_errors_are_classified(exc: Exception, kind: type, retried_here: bool) -> None:
    error = translate_error(exc, "IndexFaces")
    assert isinstance(error, kind)
    assert isinstance(error, rekognition.RetryableError) is retried_here
    # A search changes nothing, so a read timeout may be repeated at once.
    if isinstance(exc, ReadTimeoutError):
        assert isinstance(translate_error(exc, "SearchFaces"), rekognition.RetryableError)


# --- index_photo --------------------------------------------------------------


def test_index_photo_creates_the_collection_once_and_keeps_ids_boxes_reasons(aws: Any, event: Any) -> None:
    first, second = make_photo(event, seed=1), make_photo(event, seed=2)
    a, b = face_id(), face_id()
    aws.create_collection(event.pk)
    aws.index_faces(event.pk, str(first.pk), [(a, box(0.1, 0.2, 0.25, 0.3))], unindexed=[["LOW_SHARPNESS"]])
    aws.index_faces(event.pk, str(second.pk), [(b, box(0.5, 0.5, 0.1, 0.1))])
    image = Image.new("RGB", (800, 600))
    result = aws.backend.index_photo(first, image)
    assert [(f.external_id, f.left, f.top, f.width, f.height) for f in result.faces] == [(a, 80, 120, 200, 180)]
    assert result.unindexed_reasons == ["LOW_SHARPNESS"]
    assert aws.backend.index_photo(second, image).faces[0].external_id == b
    aws.done()
    assert usage("IndexFaces").calls == 2 and usage("IndexFaces").images == 2
    assert usage("IndexFaces").faces_indexed == 2
    assert usage("CreateCollection").images == 0


def test_existing_collection_is_used(aws: Any, event: Any) -> None:
    photo = make_photo(event)
    aws.create_collection(event.pk, exists=True)
    aws.index_faces(event.pk, str(photo.pk), [])
    assert aws.backend.index_photo(photo, Image.new("RGB", (640, 480))).faces == []
    aws.done()
    assert usage("CreateCollection").errors == 0


def test_the_image_sent_is_the_analysis_size_jpeg(aws: Any, event: Any, settings: Any) -> None:
    sent: list[bytes] = []

    def capture(params: dict[str, Any], **kwargs: Any) -> None:
        sent.append(params["Image"]["Bytes"])

    aws.client.meta.events.register_first("before-parameter-build.rekognition.IndexFaces", capture)
    settings.PHOTO_ANALYSIS_MAX_SIDE = 1000
    photo = make_photo(event, size=(3000, 2000))
    aws.create_collection(event.pk)
    aws.index_faces(event.pk, str(photo.pk), [(face_id(), box(0.1, 0.1, 0.1, 0.1))])
    assert tasks.run_photo(photo.pk) == "done"
    aws.done()
    with Image.open(io.BytesIO(sent[0])) as image:
        assert image.format == "JPEG" and image.size == (1000, 667)
    assert len(sent[0]) < MAX_IMAGE_BYTES
    face = Face.objects.get(photo=photo)
    assert face.left == pytest.approx(0.1, abs=0.002) and face.external_id


def test_index_photo_without_faces_is_a_photo_with_no_faces(aws: Any, event: Any) -> None:
    photo = make_photo(event)
    aws.create_collection(event.pk)
    aws.error("index_faces", "InvalidParameterException", "There are no faces in the image. Should be at least 1.")
    assert tasks.run_photo(photo.pk) == "done"
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.DONE and photo.face_count == 0


# --- errors and retries --------------------------------------------------------


def test_throttling_is_retried_here_then_succeeds(aws: Any, event: Any) -> None:
    photo = make_photo(event)
    aws.create_collection(event.pk)
    aws.error("index_faces", "ProvisionedThroughputExceededException")
    aws.error("index_faces", "ThrottlingException")
    aws.index_faces(event.pk, str(photo.pk), [(face_id(), box(0.1, 0.1, 0.2, 0.2))])
    assert tasks.run_photo(photo.pk) == "done"
    aws.done()
    row = usage("IndexFaces")
    assert (row.calls, row.throttles, row.errors, row.images) == (3, 2, 2, 1)


def test_persistent_throttling_goes_to_the_queue_retry(aws: Any, event: Any, settings: Any) -> None:
    settings.AWS_RETRY_MAX_ATTEMPTS = 2
    photo = make_photo(event)
    aws.create_collection(event.pk)
    aws.error("index_faces", "ThrottlingException")
    aws.error("index_faces", "ThrottlingException")
    assert tasks.run_photo(photo.pk) == "retrying"
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.QUEUED and "throttled" in photo.error
    # The queue's next attempt succeeds; the collection is known by now.
    Photo.objects.filter(pk=photo.pk).update(next_attempt_at=None)
    aws.index_faces(event.pk, str(photo.pk), [])
    assert tasks.run_photo(photo.pk) == "done"
    aws.done()


def test_read_timeout_of_a_search_is_retried_but_not_of_an_index(aws: Any, event: Any) -> None:
    raised: list[str] = []

    def timeout_once(model: Any, **kwargs: Any) -> None:
        if model.name not in raised:
            raised.append(model.name)
            raise ReadTimeoutError(endpoint_url="https://rekognition.eu-west-1.amazonaws.com")

    # Same node as the Stubber's handler, ahead of it: the stubbed answer stays queued.
    aws.client.meta.events.register_first("before-call.*.*", timeout_once)
    aws.search_users(event.pk, "f-1", [])
    aws.create_collection(event.pk)
    face = DetectedFace(left=0, top=0, width=10, height=10, external_id="f-1")
    photo = Photo(pk=1, event=event)
    assert aws.backend.match_faces(event, photo, [face], [Reference(user_id=1, selfies=[])]) == []
    photo = make_photo(event)
    # Queued but never used: IndexFaces may have run at AWS, so it is not repeated here.
    aws.index_faces(event.pk, str(photo.pk), [])
    with pytest.raises(TransientBackendError) as info:
        aws.backend.index_photo(photo, Image.new("RGB", (100, 100)))
    assert not isinstance(info.value, rekognition.RetryableError)
    assert raised == ["SearchUsers", "CreateCollection", "IndexFaces"]
    assert len(aws.stubber._queue) == 1
    assert FaceServiceUsage.objects.get(operation="SearchUsers").errors == 1


@pytest.mark.parametrize("code", ["UnrecognizedClientException", "InvalidSignatureException", "AccessDeniedException"])
def test_bad_credentials_fail_the_job_with_the_reason(aws: Any, event: Any, code: str) -> None:
    photo = make_photo(event)
    aws.error("create_collection", code, "The security token included in the request is invalid.")
    assert tasks.run_photo(photo.pk) == "failed"
    photo.refresh_from_db()
    assert photo.status == PhotoStatus.FAILED and code in photo.error and "credentials" in photo.error
    assert photo.attempts == 1


# --- selfies, matching, my-photos cost ----------------------------------------


def test_selfie_without_a_face_is_a_400(aws: Any, attendee: Any, client_for: Any) -> None:
    from tests.conftest import jpeg_upload

    aws.detect_faces([])
    response = client_for(attendee).post("/api/me/selfie", {"selfie": jpeg_upload("s.jpg")}, format="multipart")
    assert response.status_code == 400
    assert response.json()["detail"] == "No face found in the selfie"
    assert not Selfie.objects.exists()
    aws.done()


def test_invalid_parameter_no_face_becomes_no_face_error(aws: Any, event: Any, member: Any) -> None:
    selfie = make_selfie(member)
    aws.error("search_faces_by_image", "InvalidParameterException", "There are no faces in the image.")
    with pytest.raises(NoFaceError):
        aws.backend.call("SearchFacesByImage", event.pk, CollectionId="c", Image={"Bytes": b"x"})
    assert selfie.pk


def test_selfie_indexed_once_per_event_and_both_directions_match(
    aws: Any, event: Any, member: Any, client_for: Any, settings: Any
) -> None:
    """Selfie upload → user + SearchFacesByImage; a later photo → SearchUsers; my-photos → no call."""
    threshold = settings.AWS_REKOGNITION_MATCH_THRESHOLD
    old_photo = make_photo(event, seed=1)
    old_face, other_face = face_id(), face_id()
    aws.create_collection(event.pk)
    aws.index_faces(
        event.pk, str(old_photo.pk), [(old_face, box(0.1, 0.1, 0.2, 0.2)), (other_face, box(0.5, 0.1, 0.2, 0.2))]
    )
    # Nobody has a selfie yet: no search at all.
    assert tasks.run_photo(old_photo.pk) == "done"

    selfie_face = face_id()
    aws.detect_faces([box(0.3, 0.3, 0.4, 0.4), box(0.0, 0.0, 0.1, 0.1)])
    aws.index_faces(event.pk, f"selfie-{member.pk}", [(selfie_face, box(0.3, 0.3, 0.4, 0.4))], max_faces=1)
    # The attendee's user does not exist yet: AWS says so, the user is created, the selfie face joins it.
    aws.associate_faces(event.pk, member.pk, [selfie_face], threshold, error="ResourceNotFoundException")
    aws.create_user(event.pk, member.pk)
    aws.associate_faces(event.pk, member.pk, [selfie_face], threshold)
    aws.search_faces_by_image(event.pk, [(old_face, str(old_photo.pk), 97.5), (face_id(), "999", 90.0)])
    # A close match joins the user vector.
    aws.associate_faces(event.pk, member.pk, [old_face], rekognition.AUTO_ASSOCIATE_SIMILARITY)
    selfie, found = pipeline.enrol_selfie(member, SimpleUploadedFile("s.jpg", jpeg((400, 400))))
    assert found == 2 and selfie.external_id == f"selfie-{member.pk}"
    assert RekognitionSelfieFace.objects.get(selfie=selfie, event=event).face_id == selfie_face
    match = Match.objects.get(user=member)
    assert (match.photo_id, match.face.external_id, match.similarity) == (old_photo.pk, old_face, 0.975)

    new_photo = make_photo(event, seed=2)
    new_face, stranger, look_alike = face_id(), face_id(), face_id()
    aws.index_faces(
        event.pk,
        str(new_photo.pk),
        [
            (new_face, box(0.1, 0.1, 0.2, 0.2)),
            (stranger, box(0.6, 0.1, 0.2, 0.2)),
            (look_alike, box(0.3, 0.6, 0.2, 0.2)),
        ],
    )
    aws.search_users(event.pk, new_face, [(member.pk, 96.0)])
    # A user of someone who is not a member of this event, or not ours, does not count.
    aws.search_users(event.pk, stranger, [(424242, 99.0), ("someone-else", 99.0)])
    # Matched, but not closely enough to join the user vector.
    aws.search_users(event.pk, look_alike, [(member.pk, 85.0)])
    aws.associate_faces(event.pk, member.pk, [new_face], rekognition.AUTO_ASSOCIATE_SIMILARITY)
    assert tasks.run_photo(new_photo.pk) == "done"
    assert set(Match.objects.filter(user=member).values_list("photo_id", flat=True)) == {old_photo.pk, new_photo.pk}
    assert Match.objects.get(user=member, photo=new_photo).face.external_id == new_face

    # Joining again / refreshing neither indexes the selfie again nor re-associates known faces.
    aws.search_faces_by_image(event.pk, [(old_face, str(old_photo.pk), 97.5)])
    pipeline.refresh_member_matches(member, event)
    aws.done()

    calls_before = sum(FaceServiceUsage.objects.values_list("calls", flat=True))
    response = client_for(member).get(f"/api/my-photos?event={event.pk}")
    assert response.status_code == 200
    assert sum(FaceServiceUsage.objects.values_list("calls", flat=True)) == calls_before
    assert not FaceServiceUsage.objects.filter(operation="SearchFaces").exists()
    aws.done()


def test_event_without_faces_skips_the_selfie_search(aws: Any, event: Any, member: Any, settings: Any) -> None:
    selfie = make_selfie(member)
    selfie_face = face_id()
    aws.create_collection(event.pk)
    aws.index_faces(event.pk, f"selfie-{member.pk}", [(selfie_face, box(0.3, 0.3, 0.4, 0.4))], max_faces=1)
    aws.associate_faces(event.pk, member.pk, [selfie_face], settings.AWS_REKOGNITION_MATCH_THRESHOLD)
    assert aws.backend.match_reference(event, Reference(user_id=member.pk, selfies=[selfie])) == []
    aws.done()


# --- deleting -------------------------------------------------------------------


def test_forget_faces_deletes_in_batches_of_4096(aws: Any, event: Any) -> None:
    ids = sorted(face_id() for _ in range(5000))
    aws.delete_faces(event.pk, ids[:4096])
    aws.delete_faces(event.pk, ids[4096:])
    faces = [Face(external_id=i) for i in ids] + [Face(external_id="")]
    aws.backend.forget_faces(event, faces)
    aws.done()
    assert usage("DeleteFaces").faces_deleted == 5000 and usage("DeleteFaces").images == 0


def test_forget_selfie_deletes_its_face_in_every_event(aws: Any, event: Any, member: Any, photographer: Any) -> None:
    from gallery.models import Event

    other = Event.objects.create(owner=photographer, name="Party")
    Membership.objects.create(user=member, event=other)
    selfie = make_selfie(member)
    RekognitionSelfieFace.objects.create(selfie=selfie, event=event, face_id="s-1")
    RekognitionSelfieFace.objects.create(selfie=selfie, event=other, face_id="s-2")
    # The attendee's last selfie: their user goes from each collection (none yet in the other one).
    aws.delete_user(event.pk, member.pk)
    aws.delete_user(other.pk, member.pk, missing=True)
    aws.delete_faces(event.pk, ["s-1"])
    aws.delete_faces(other.pk, ["s-2"])
    pipeline.delete_selfie(selfie)
    aws.done()
    assert not RekognitionSelfieFace.objects.exists() and not Selfie.objects.exists()


def test_reprocessing_deletes_the_replaced_faces(aws: Any, event: Any) -> None:
    photo = make_photo(event)
    first, second = face_id(), face_id()
    aws.create_collection(event.pk)
    aws.index_faces(event.pk, str(photo.pk), [(first, box(0.1, 0.1, 0.2, 0.2))])
    assert tasks.run_photo(photo.pk) == "done"
    Photo.objects.filter(pk=photo.pk).update(status=PhotoStatus.QUEUED)
    aws.index_faces(event.pk, str(photo.pk), [(second, box(0.1, 0.1, 0.2, 0.2))])
    aws.delete_faces(event.pk, [first])
    assert tasks.run_photo(photo.pk) == "done"
    aws.done()
    assert list(Face.objects.values_list("external_id", flat=True)) == [second]


def test_deleting_the_event_deletes_its_collection_not_face_by_face(
    aws: Any, event: Any, django_capture_on_commit_callbacks: Any
) -> None:
    photo = make_photo(event)
    Face.objects.create(photo=photo, event=event, left=0, top=0, width=1, height=1, external_id="f-1")
    aws.delete_collection(event.pk)
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_event(event)
    aws.done()
    assert not Face.objects.exists()


def test_deleting_a_photo_or_an_account_deletes_their_faces(
    aws: Any, event: Any, member: Any, django_capture_on_commit_callbacks: Any
) -> None:
    photo = make_photo(event)
    Face.objects.create(photo=photo, event=event, left=0, top=0, width=1, height=1, external_id="f-1")
    Face.objects.create(photo=photo, event=event, left=0, top=0, width=1, height=1, external_id="f-2")
    aws.delete_faces(event.pk, ["f-1", "f-2"])
    with django_capture_on_commit_callbacks(execute=True):
        services.delete_photo(photo)
    RekognitionSelfieFace.objects.create(selfie=make_selfie(member), event=event, face_id="s-1")
    aws.delete_user(event.pk, member.pk)
    aws.delete_faces(event.pk, ["s-1"])
    services.delete_account(member)
    aws.done()
    assert not RekognitionSelfieFace.objects.exists()


def test_forget_event_without_a_collection_is_fine(aws: Any, event: Any) -> None:
    aws.delete_collection(event.pk, missing=True)
    aws.backend.forget_event(event)
    aws.done()


# --- startup check --------------------------------------------------------------


def test_check_is_silent_for_the_local_backend(settings: Any) -> None:
    settings.FACE_BACKEND = "local"
    assert check_rekognition(None) == []


def test_check_reports_a_wrong_region(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.FACE_BACKEND = "rekognition"
    settings.AWS_REGION = "xx-nowhere-1"
    assert [m.id for m in check_rekognition(None)] == ["processing.E011"]


def test_check_reports_missing_credentials(settings: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    settings.FACE_BACKEND = "rekognition"
    settings.AWS_REGION = "eu-west-1"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert [m.id for m in check_rekognition(None)] == ["processing.E012"]


def test_check_reports_rejected_credentials(aws: Any, settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rekognition, "build_client", lambda **kwargs: aws.client)
    aws.error("list_collections", "UnrecognizedClientException", "The security token is invalid.")
    messages = check_rekognition(None)
    assert [m.id for m in messages] == ["processing.E013"] and "credentials" in messages[0].msg


def test_with_half_the_calls_throttled_every_job_finishes(aws: Any, event: Any, member: Any) -> None:
    from botocore.exceptions import ClientError

    selfie = make_selfie(member)
    RekognitionSelfieFace.objects.create(selfie=selfie, event=event, face_id="selfie-face")
    luck = random.Random(7)
    injected: list[str] = []

    def throttle_half(model: Any, **kwargs: Any) -> None:
        if luck.random() < 0.5:
            injected.append(model.name)
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            raise ClientError({**error, "ResponseMetadata": {"HTTPStatusCode": 400}}, model.name)

    aws.client.meta.events.register_first("before-call.*.*", throttle_half)
    aws.create_collection(event.pk)
    photos = [make_photo(event, seed=n) for n in range(10)]
    for photo in photos:
        mine, other = face_id(), face_id()
        aws.index_faces(event.pk, str(photo.pk), [(mine, box(0.1, 0.1, 0.2, 0.2)), (other, box(0.5, 0.1, 0.2, 0.2))])
        aws.search_users(event.pk, mine, [(member.pk, 99.0)])
        aws.search_users(event.pk, other, [])
        aws.associate_faces(event.pk, member.pk, [mine], rekognition.AUTO_ASSOCIATE_SIMILARITY)
    assert tasks.process_photos([p.pk for p in photos]) == {p.pk: "done" for p in photos}
    aws.done()
    assert len(injected) >= 10
    assert Match.objects.filter(user=member).count() == 10
    throttles = sum(FaceServiceUsage.objects.values_list("throttles", flat=True))
    assert throttles == len(injected)


# --- user vectors -----------------------------------------------------------------


def test_a_guest_in_30_photos_still_gets_photo_31_matched(aws: Any, event: Any, member: Any) -> None:
    """SearchFaces gave the collection's 10 faces most like a new face: a guest's own 30 earlier faces
    outranked their selfie, and photo 31 matched nobody. SearchUsers compares with one vector per guest."""
    selfie = make_selfie(member)
    RekognitionSelfieFace.objects.create(selfie=selfie, event=event, face_id=face_id())
    aws.create_collection(event.pk)
    photos = [make_photo(event, seed=n) for n in range(1, 32)]
    for number, photo in enumerate(photos, start=1):
        guest, stranger = face_id(), face_id()
        aws.index_faces(
            event.pk, str(photo.pk), [(guest, box(0.1, 0.1, 0.2, 0.2)), (stranger, box(0.5, 0.1, 0.2, 0.2))]
        )
        aws.search_users(event.pk, guest, [(member.pk, 99.3)])
        aws.search_users(event.pk, stranger, [])
        # Close matches join the user vector until it holds enough faces: no more billed calls after that.
        if number <= rekognition.AUTO_ASSOCIATE_MAX_FACES:
            aws.associate_faces(event.pk, member.pk, [guest], rekognition.AUTO_ASSOCIATE_SIMILARITY)
    assert tasks.process_photos([p.pk for p in photos]) == {p.pk: "done" for p in photos}
    aws.done()
    assert set(Match.objects.filter(user=member).values_list("photo_id", flat=True)) == {p.pk for p in photos}
    assert usage("SearchUsers").calls == 62 and usage("AssociateFaces").calls == rekognition.AUTO_ASSOCIATE_MAX_FACES
    assert not FaceServiceUsage.objects.filter(operation="SearchFaces").exists()


def test_associate_faces_batches_of_100_creates_the_user_and_retries(aws: Any, event: Any, settings: Any) -> None:
    threshold = settings.AWS_REKOGNITION_MATCH_THRESHOLD
    ids = sorted(face_id() for _ in range(250))
    faces = [Face(event=event, photo_id=1, external_id=fid) for fid in ids]
    # No user yet: AWS says so, CreateUser, then the same batch again.
    aws.associate_faces(event.pk, 7, ids[:100], threshold, error="ResourceNotFoundException")
    aws.create_user(event.pk, 7)
    aws.associate_faces(event.pk, 7, ids[:100], threshold, refused={ids[3]: "LOW_MATCH_CONFIDENCE"})
    # Throttled, and "the user is being updated": both repeated here.
    aws.error("associate_faces", "ThrottlingException")
    aws.associate_faces(event.pk, 7, ids[100:200], threshold, refused={ids[150]: "ASSOCIATED_TO_A_DIFFERENT_USER"})
    aws.error("associate_faces", "ConflictException")
    aws.associate_faces(event.pk, 7, ids[200:], threshold)
    associated = aws.backend.associate(
        event.pk, 7, [f.external_id for f in [*faces, Face(external_id="")]], threshold=threshold
    )
    aws.done()
    assert sorted(associated) == sorted(set(ids) - {ids[3], ids[150]})
    row = usage("AssociateFaces")
    # Billed: the three successful calls, one image each whatever the number of faces.
    assert (row.calls, row.throttles, row.images) == (6, 1, 3)
    assert usage("CreateUser").images == 0


def test_a_full_user_is_noted_and_not_called_again_until_a_face_leaves(
    aws: Any, event: Any, member: Any, settings: Any
) -> None:
    threshold = settings.AWS_REKOGNITION_MATCH_THRESHOLD
    first, second = face_id(), face_id()
    aws.associate_faces(event.pk, member.pk, [first], threshold, error="ServiceQuotaExceededException")
    assert aws.backend.remember_match(event, member.pk, [Face(external_id=first)]) == 0
    # Known full: no call at all.
    assert aws.backend.remember_match(event, member.pk, [Face(external_id=second)]) == 0
    # "Not me" frees a place.
    aws.disassociate_faces(event.pk, member.pk, [first])
    assert aws.backend.forget_match(event, member.pk, [Face(external_id=first)]) == 1
    aws.associate_faces(event.pk, member.pk, [second], threshold)
    assert aws.backend.remember_match(event, member.pk, [Face(external_id=second)]) == 1
    aws.done()


def test_forget_match_disassociates_and_a_missing_user_is_fine(aws: Any, event: Any) -> None:
    ids = sorted(face_id() for _ in range(120))
    aws.disassociate_faces(event.pk, 5, ids[:100])
    aws.disassociate_faces(event.pk, 5, ids[100:])
    assert aws.backend.forget_match(event, 5, [Face(external_id=i) for i in ids]) == 120
    aws.disassociate_faces(event.pk, 6, ids[:1], missing=True)
    assert aws.backend.forget_match(event, 6, [Face(external_id=ids[0])]) == 0
    aws.done()


def test_deleting_an_associated_face_disassociates_it_first(aws: Any, event: Any) -> None:
    free, held = sorted([face_id(), face_id()])
    aws.delete_faces(event.pk, [free, held], associated={held: "user-7"})
    aws.disassociate_faces(event.pk, "user-7", [held])
    aws.delete_faces(event.pk, [held])
    aws.backend.forget_faces(event, [Face(external_id=free), Face(external_id=held)])
    aws.done()
    assert usage("DeleteFaces").faces_deleted == 2


def test_create_user_that_exists_is_fine_and_no_collection_is_no_user(aws: Any, event: Any) -> None:
    aws.create_user(event.pk, 3, error="ConflictException")
    assert aws.backend.ensure_user(event.pk, 3) is True
    aws.create_user(event.pk, 3, error="ResourceNotFoundException")
    assert aws.backend.ensure_user(event.pk, 3) is False
    aws.done()
    assert usage("CreateUser").errors == 0


def test_an_association_that_fails_does_not_fail_the_photo(aws: Any, event: Any, member: Any) -> None:
    RekognitionSelfieFace.objects.create(selfie=make_selfie(member), event=event, face_id=face_id())
    photo = make_photo(event)
    guest = face_id()
    aws.create_collection(event.pk)
    aws.index_faces(event.pk, str(photo.pk), [(guest, box(0.1, 0.1, 0.2, 0.2))])
    aws.search_users(event.pk, guest, [(member.pk, 99.0)])
    aws.error("associate_faces", "InvalidParameterException", "Invalid user status")
    assert tasks.run_photo(photo.pk) == "done"
    aws.done()
    assert Match.objects.get(user=member).photo_id == photo.pk


@pytest.mark.parametrize("same_person", [True, False])
def test_a_new_selfie_keeps_the_user_only_if_it_is_the_same_person(
    aws: Any, event: Any, member: Any, settings: Any, same_person: bool
) -> None:
    """SearchUsersByImage checks the user vector built from the old selfie against the new one."""
    threshold = settings.AWS_REKOGNITION_MATCH_THRESHOLD
    photo = make_photo(event)
    face = Face.objects.create(photo=photo, event=event, left=0, top=0, width=1, height=1, external_id=face_id())
    Match.objects.create(user=member, event=event, photo=photo, face=face, similarity=0.99)
    new_selfie = make_selfie(member)
    selfie_face = face_id()
    if same_person:
        aws.search_users_by_image(event.pk, [(member.pk, 98.0)])
        aws.create_collection(event.pk)
        aws.index_faces(event.pk, f"selfie-{member.pk}", [(selfie_face, box(0.3, 0.3, 0.4, 0.4))], max_faces=1)
        aws.associate_faces(event.pk, member.pk, [selfie_face], threshold)
    else:
        aws.search_users_by_image(event.pk, [(424242, 91.0)])
        aws.delete_user(event.pk, member.pk)
        aws.create_collection(event.pk)
        aws.index_faces(event.pk, f"selfie-{member.pk}", [(selfie_face, box(0.3, 0.3, 0.4, 0.4))], max_faces=1)
        aws.associate_faces(event.pk, member.pk, [selfie_face], threshold, error="ResourceNotFoundException")
        aws.create_user(event.pk, member.pk)
        aws.associate_faces(event.pk, member.pk, [selfie_face], threshold)
    aws.search_faces_by_image(event.pk, [(face.external_id, str(photo.pk), 99.0)])
    matches = aws.backend.match_reference(event, Reference(user_id=member.pk, selfies=[new_selfie]))
    aws.done()
    assert [(m.photo_id, m.similarity) for m in matches] == [(photo.pk, 0.99)]
    assert usage("SearchUsersByImage").images == 1
