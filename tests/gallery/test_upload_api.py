import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from gallery.models import Photo, PhotoStatus
from tests.conftest import jpeg_upload, png_upload
from tests.fakes import scene_png

pytestmark = pytest.mark.django_db


def upload(client, event, files):
    return client.post(f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart")


def test_upload_answers_202_and_processes_in_the_background(
    client_for, photographer, event, fake_backend, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client_for(photographer), event, [png_upload("a.png", scene_png([0, 1]))])
    assert response.status_code == 202
    job = response.json()["jobs"][0]
    assert job["filename"] == "a.png" and job["status"] == "queued" and job["duplicate"] is False
    photo = Photo.objects.get(pk=job["photo_id"])
    assert str(photo.job_id) == job["job_id"]
    assert photo.status == PhotoStatus.DONE
    assert photo.face_count == 2


def test_upload_does_not_wait_for_face_work(client_for, photographer, event):
    # Without the commit callbacks running, nothing is processed: the answer
    # is given before any face work.
    response = upload(client_for(photographer), event, [jpeg_upload()])
    assert response.status_code == 202
    assert Photo.objects.get().status == PhotoStatus.QUEUED


def test_reupload_is_a_duplicate_and_not_queued_again(client_for, photographer, event):
    client = client_for(photographer)
    first = upload(client, event, [jpeg_upload("a.jpg")]).json()["jobs"][0]
    Photo.objects.filter(pk=first["photo_id"]).update(status=PhotoStatus.DONE)
    second = upload(client, event, [jpeg_upload("renamed.jpg")]).json()["jobs"][0]
    assert second["duplicate"] is True
    assert second["photo_id"] == first["photo_id"]
    assert second["status"] == "done"
    # The name echoed is the one sent; the stored photo keeps the first name.
    assert second["filename"] == "renamed.jpg" and second["stored_filename"] == "a.jpg"
    assert Photo.objects.count() == 1


def test_each_verdict_names_the_file_by_its_position(client_for, photographer, event):
    client = client_for(photographer)
    upload(client, event, [jpeg_upload("old.jpg", colour=(1, 1, 1))])
    files = [
        SimpleUploadedFile("notes.jpg", b"not a picture"),
        jpeg_upload("new.jpg", colour=(2, 2, 2)),
        jpeg_upload("again.jpg", colour=(1, 1, 1)),
        jpeg_upload("twice.jpg", colour=(2, 2, 2)),
        jpeg_upload("../same.jpg", colour=(3, 3, 3)),
    ]
    body = upload(client, event, files).json()
    jobs = {job["index"]: job for job in body["jobs"]}
    rejected = {entry["index"]: entry for entry in body["rejected"]}
    assert sorted(jobs) == [1, 2, 4] and sorted(rejected) == [0, 3]
    assert rejected[0]["filename"] == "notes.jpg" and "not an image" in rejected[0]["error"]
    assert rejected[3]["filename"] == "twice.jpg" and "twice" in rejected[3]["error"]
    assert jobs[1]["filename"] == "new.jpg" and jobs[1]["duplicate"] is False and "stored_filename" not in jobs[1]
    assert jobs[2]["filename"] == "again.jpg" and jobs[2]["duplicate"] is True
    assert jobs[2]["stored_filename"] == "old.jpg"
    assert jobs[4]["filename"] == "same.jpg" and "stored_filename" not in jobs[4]


def test_mixed_upload_reports_rejected_files(client_for, photographer, event):
    text = SimpleUploadedFile("notes.jpg", b"this is not a picture", content_type="image/jpeg")
    response = upload(client_for(photographer), event, [jpeg_upload("good.jpg"), text])
    assert response.status_code == 202
    body = response.json()
    assert [j["filename"] for j in body["jobs"]] == ["good.jpg"]
    assert body["rejected"][0]["filename"] == "notes.jpg"
    assert "not an image" in body["rejected"][0]["error"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"GIF89a" + b"\0" * 100, "not an image"),
        (jpeg_upload().read()[:400], "truncated"),
    ],
)
def test_nothing_acceptable_is_400(client_for, photographer, event, data, message):
    response = upload(client_for(photographer), event, [SimpleUploadedFile("x.jpg", data)])
    assert response.status_code == 400
    body = response.json()
    assert message in body["rejected"][0]["error"]
    assert body["detail"]
    assert Photo.objects.count() == 0


def test_missing_field_is_400(client_for, photographer, event):
    response = client_for(photographer).post(
        f"/api/photographer/events/{event.pk}/upload-photos", {"other": "x"}, format="multipart"
    )
    assert response.status_code == 400
    assert "photos" in response.json()["detail"]


def test_too_many_pixels_is_rejected(client_for, photographer, event, settings):
    settings.MAX_IMAGE_PIXELS = 1_000_000
    response = upload(client_for(photographer), event, [jpeg_upload(size=(2000, 1000))])
    assert response.status_code == 400
    assert "too many pixels" in response.json()["rejected"][0]["error"]


def test_size_limit(client_for, photographer, event, settings):
    settings.MAX_UPLOAD_MB = 1
    buffer = io.BytesIO()
    Image.effect_noise((1200, 1200), 80).convert("RGB").save(buffer, "PNG")
    assert buffer.tell() > 1024 * 1024
    response = upload(client_for(photographer), event, [SimpleUploadedFile("big.png", buffer.getvalue())])
    assert response.status_code == 400
    assert "larger than 1 MB" in response.json()["rejected"][0]["error"]


def test_filename_is_display_text_only(client_for, photographer, event):
    response = upload(client_for(photographer), event, [jpeg_upload("../../etc/passwd.jpg")])
    photo = Photo.objects.get(pk=response.json()["jobs"][0]["photo_id"])
    assert photo.filename == "passwd.jpg"
    assert "passwd" not in photo.original.name
    assert photo.original.name.startswith(f"events/{event.pk}/originals/")
    assert default_storage.exists(photo.original.name)


def test_only_owner_may_upload(client_for, other_photographer, attendee, anon_client, event):
    # Another photographer may not know the event exists: 404, as for no event at all.
    assert upload(client_for(other_photographer), event, [jpeg_upload()]).status_code == 404
    assert upload(client_for(attendee), event, [jpeg_upload()]).status_code == 403
    assert upload(anon_client, event, [jpeg_upload()]).status_code == 401
    assert Photo.objects.count() == 0


def test_unknown_event_is_404(client_for, photographer):
    response = photographer and client_for(photographer).post(
        "/api/photographer/events/424242/upload-photos", {"photos": [jpeg_upload()]}, format="multipart"
    )
    assert response.status_code == 404


def test_queue_full_is_503_and_stores_nothing(client_for, photographer, event, settings):
    settings.PHOTO_QUEUE_MAX_SIZE = 2
    client = client_for(photographer)
    assert upload(client, event, [jpeg_upload("a.jpg", colour=(1, 2, 3))]).status_code == 202
    response = upload(client, event, [jpeg_upload("b.jpg", colour=(4, 5, 6)), jpeg_upload("c.jpg", colour=(7, 8, 9))])
    assert response.status_code == 503
    assert response["Retry-After"]
    assert response.json() == {"detail": "Queue is full, try again later"}
    assert Photo.objects.count() == 1


def test_jpeg_cut_after_the_header_is_rejected(client_for, photographer, event):
    data = jpeg_upload(size=(1200, 900)).read()
    cut = SimpleUploadedFile("cut.jpg", data[: len(data) * 2 // 3])
    response = upload(client_for(photographer), event, [cut])
    assert response.status_code == 400
    assert "truncated" in response.json()["rejected"][0]["error"]


def test_jpeg_padded_after_its_end_marker_is_accepted(client_for, photographer, event):
    data = jpeg_upload(size=(300, 200)).read() + b"\0" * 300
    response = upload(client_for(photographer), event, [SimpleUploadedFile("padded.jpg", data)])
    assert response.status_code == 202


def test_a_photo_stored_but_never_queued_is_queued_when_sent_again(
    client_for, photographer, event, fake_backend, django_capture_on_commit_callbacks
):
    client = client_for(photographer)
    # The first request stored the photo, then died before its commit callbacks
    # handed it to the queue (here: they never run).
    first = upload(client, event, [jpeg_upload("a.jpg")]).json()["jobs"][0]
    photo = Photo.objects.get(pk=first["photo_id"])
    assert photo.status == PhotoStatus.QUEUED and photo.dispatched_at is None
    with django_capture_on_commit_callbacks(execute=True):
        second = upload(client, event, [jpeg_upload("a.jpg")]).json()["jobs"][0]
    assert second["duplicate"] is True and second["photo_id"] == photo.pk
    photo.refresh_from_db()
    # In sync mode the enqueue runs the task at once.
    assert photo.status == PhotoStatus.DONE and photo.dispatched_at is not None


def test_a_duplicate_already_on_the_queue_is_not_queued_again(
    client_for, photographer, event, fake_backend, django_capture_on_commit_callbacks
):
    client = client_for(photographer)
    first = upload(client, event, [jpeg_upload("a.jpg")]).json()["jobs"][0]
    Photo.objects.filter(pk=first["photo_id"]).update(dispatched_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        upload(client, event, [jpeg_upload("a.jpg")])
    assert callbacks == []
    assert Photo.objects.get(pk=first["photo_id"]).status == PhotoStatus.QUEUED
