"""Staff endpoints for face-service usage and the cost estimate."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.base import ContentFile

from gallery.models import Event, Face, Photo
from processing import costs, metrics
from processing.backends import rekognition
from processing.backends.base import TransientBackendError
from processing.models import FaceServiceUsage
from tests.processing.aws_stubs import RekognitionStub, box, face_id

pytestmark = pytest.mark.django_db

METRICS = "/api/admin/aws-metrics"
COSTS = "/api/admin/aws-metrics/costs"


@pytest.fixture(autouse=True)
def fast_settings(settings: Any, tmp_path: Any) -> None:
    settings.AWS_RETRY_BASE_DELAY = 0.0
    settings.AWS_RETRY_MAX_ATTEMPTS = 1
    settings.FACE_LIMIT_LOCK_DIR = tmp_path / "locks"
    settings.REDIS_URL = ""


@pytest.fixture
def aws(settings: Any, monkeypatch: pytest.MonkeyPatch) -> RekognitionStub:
    stub = RekognitionStub(settings, monkeypatch)
    monkeypatch.setattr(rekognition, "_client", stub.client)
    monkeypatch.setattr(rekognition, "_client_pid", os.getpid())
    return stub


@pytest.mark.parametrize("url", [METRICS, COSTS])
def test_staff_only(
    url: str, anon_client: Any, client_for: Any, attendee: User, photographer: User, staff: User
) -> None:
    assert anon_client.get(url).status_code == 401
    assert client_for(attendee).get(url).status_code == 403
    assert client_for(photographer).get(url).status_code == 403
    assert client_for(staff).get(url).status_code == 200


def test_calls_aggregate_into_one_row_per_day_event_backend_operation(event: Event) -> None:
    for latency in (5, 40, 40, 700):
        metrics.record_call("rekognition", "SearchFaces", event.pk, latency_ms=latency, images=1, faces_matched=2)
    metrics.record_call("rekognition", "SearchFaces", event.pk, latency_ms=30, errored=True, throttled=True, images=1)
    row = FaceServiceUsage.objects.get()
    assert (row.calls, row.errors, row.throttles, row.images, row.faces_matched) == (5, 1, 1, 4, 8)
    assert (row.latency_ms_sum, row.latency_ms_max) == (815, 700)
    assert (row.latency_b0, row.latency_b2, row.latency_b6) == (1, 3, 1)


def test_cost_is_recorded_calls_times_unit_prices(
    aws: RekognitionStub, event: Event, photographer: User, staff: User, client_for: Any, settings: Any
) -> None:
    settings.AWS_PRICE_PER_IMAGE = 0.0012
    settings.AWS_PRICE_PER_FACE_MONTH = 0.00002
    other = Event.objects.create(owner=photographer, name="Party")
    backend = aws.backend
    # Billed: 3 DetectFaces, 2 IndexFaces and 1 AssociateFaces (event), 1 SearchUsers (other event).
    for _ in range(3):
        aws.detect_faces([box(0.1, 0.1, 0.2, 0.2)])
        backend.call("DetectFaces", None, Image={"Bytes": b"x"}, Attributes=["DEFAULT"])
    aws.create_collection(event.pk)
    indexed = []
    for n in range(2):
        photo = Photo.objects.create(event=event, filename=f"{n}.jpg", sha256=str(n), format="JPEG")
        indexed.append(face_id())
        aws.index_faces(event.pk, str(photo.pk), [(indexed[-1], box(0.1, 0.1, 0.2, 0.2))])
        backend.ensure_collection(event.pk)
        backend.call("IndexFaces", event.pk, **_index_params(aws, event, photo))
    aws.search_users(other.pk, "f-1", [])
    backend.call(
        "SearchUsers",
        other.pk,
        CollectionId=aws.collection(other.pk),
        FaceId="f-1",
        UserMatchThreshold=settings.AWS_REKOGNITION_MATCH_THRESHOLD,
        MaxUsers=settings.AWS_REKOGNITION_SEARCH_MAXFACES,
    )
    # One AssociateFaces call is one image, however many faces it carries; CreateUser is free.
    aws.associate_faces(event.pk, 9, indexed, 80.0, error="ResourceNotFoundException")
    aws.create_user(event.pk, 9)
    aws.associate_faces(event.pk, 9, indexed, 80.0)
    assert len(backend.associate(event.pk, 9, indexed, threshold=80.0)) == 2
    # Not billed: a throttled call, deletes, user deletion, the local backend.
    aws.error("search_users", "ThrottlingException")
    with pytest.raises(TransientBackendError):
        backend.call("SearchUsers", other.pk, CollectionId=aws.collection(other.pk), FaceId="f-2")
    aws.delete_faces(event.pk, ["gone"])
    backend.delete_faces(event.pk, ["gone"])
    aws.delete_user(event.pk, 9)
    backend.delete_user(event.pk, 9)
    metrics.record_call("local", "IndexPhoto", event.pk, latency_ms=300, images=1)
    # Two days ago: part of the month (unless the month just began) and of by_day.
    metrics.record_call("rekognition", "IndexFaces", event.pk, images=1, day=metrics.today() - timedelta(days=2))
    aws.done()
    # Faces we keep at AWS: 3 in the event's collection.
    stored_in = Photo.objects.filter(event=event).first()
    assert stored_in is not None
    for _ in range(3):
        Face.objects.create(photo=stored_in, event=event, left=0, top=0, width=1, height=1, external_id=face_id())

    body = client_for(staff).get(COSTS).json()
    images = 3 + 2 + 1 + 1 + 1
    assert body["total"]["images"] == images
    assert body["total"]["image_cost"] == pytest.approx(images * 0.0012)
    assert body["total"]["faces_stored"] == 3
    assert body["total"]["storage_cost_per_month"] == pytest.approx(3 * 0.00002)
    by_event = {row["event"]: row for row in body["by_event"]}
    assert by_event[event.pk]["images"] == 4 and by_event[event.pk]["image_cost"] == pytest.approx(4 * 0.0012)
    assert by_event[other.pk]["images"] == 1
    assert by_event[None]["images"] == 3  # the selfie checks belong to no event
    assert sum(row["images"] for row in body["by_day"]) == images
    assert sum(row["image_cost"] for row in body["by_month"]) == pytest.approx(images * 0.0012)
    assert body["by_day"][-1]["images"] == 7
    by_operation = {row["operation"]: row for row in body["by_operation"]}
    assert {name: row["images"] for name, row in by_operation.items()} == {
        "AssociateFaces": 1,
        "CreateCollection": 0,
        "CreateUser": 0,
        "DeleteFaces": 0,
        "DeleteUser": 0,
        "DetectFaces": 3,
        "IndexFaces": 3,
        "SearchUsers": 1,
    }
    assert by_operation["AssociateFaces"]["calls"] == 2 and by_operation["AssociateFaces"]["pricing"] == "group-1"
    assert by_operation["DetectFaces"]["pricing"] == "group-2" and by_operation["CreateUser"]["pricing"] == "free"
    assert {"SearchUsers", "SearchUsersByImage", "AssociateFaces", "DisassociateFaces"} <= set(
        body["billed_operations"]
    )
    assert not {"CreateUser", "DeleteUser", "ListFaces", "DeleteFaces"} & set(body["billed_operations"])


def _index_params(aws: RekognitionStub, event: Event, photo: Photo) -> dict[str, Any]:
    return {
        "CollectionId": aws.collection(event.pk),
        "Image": {"Bytes": b"x"},
        "ExternalImageId": str(photo.pk),
        "MaxFaces": aws.settings.AWS_REKOGNITION_MAX_FACES,
        "QualityFilter": aws.settings.AWS_REKOGNITION_QUALITY_FILTER,
        "DetectionAttributes": ["DEFAULT"],
    }


def test_usage_windows_latency_percentiles_and_stored_faces(event: Event, staff: User, client_for: Any) -> None:
    for _ in range(10):
        metrics.record_call("rekognition", "SearchFaces", event.pk, latency_ms=40, images=1)
    metrics.record_call("rekognition", "SearchFaces", event.pk, latency_ms=3000, images=1, errored=True)
    metrics.record_call("rekognition", "SearchFaces", event.pk, throttled=True, errored=True)
    metrics.record_call("rekognition", "IndexFaces", event.pk, images=1, day=metrics.today() - timedelta(days=3))
    metrics.record_call("rekognition", "IndexFaces", event.pk, images=1, day=metrics.today() - timedelta(days=20))
    photo = Photo.objects.create(event=event, filename="a.jpg", sha256="a", format="JPEG")
    photo.original.save("a.jpg", ContentFile(b"x"))
    Face.objects.create(photo=photo, event=event, left=0, top=0, width=1, height=1, external_id="f-1")
    Face.objects.create(photo=photo, event=event, left=0, top=0, width=1, height=1)  # local: not at AWS

    body = client_for(staff).get(METRICS).json()
    today = {(r["backend"], r["operation"]): r for r in body["windows"]["today"]["operations"]}
    search = today[("rekognition", "SearchFaces")]
    assert (search["calls"], search["errors"], search["throttles"], search["images"]) == (12, 2, 1, 10)
    assert search["latency_ms"]["p50"] == 50.0 and search["latency_ms"]["p95"] == 3000.0
    assert ("rekognition", "IndexFaces") not in today
    week = {r["operation"]: r["calls"] for r in body["windows"]["7d"]["operations"]}
    month = {r["operation"]: r["calls"] for r in body["windows"]["30d"]["operations"]}
    assert week == {"SearchFaces": 12, "IndexFaces": 1} and month == {"SearchFaces": 12, "IndexFaces": 2}
    assert body["collections"] == [
        {
            "event": event.pk,
            "event_name": event.name,
            "collection": f"photoevent-event-{event.pk}",
            "photo_faces": 1,
            "selfie_faces": 0,
            "faces": 1,
            "users": 0,
        }
    ]


def test_cost_days_parameter_is_validated(staff: User, client_for: Any) -> None:
    assert client_for(staff).get(f"{COSTS}?days=abc").status_code == 400
    assert client_for(staff).get(f"{COSTS}?days=0").status_code == 400
    assert client_for(staff).get(f"{COSTS}?days=7").json()["days"] == 7


def test_admin_page_shows_the_same_figures(event: Event, client: Any) -> None:
    admin = User.objects.create_superuser("root", password="Pass-word-1234")
    metrics.record_call("rekognition", "IndexFaces", event.pk, latency_ms=120, images=1)
    client.force_login(admin)
    response = client.get("/admin/processing/faceserviceusage/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "IndexFaces" in page and "Estimated cost" in page
    assert response.context["costs"]["total"] == costs.cost_summary()["total"]
