"""The whole path on real faces, through the public API, with the real local backend."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from gallery.models import Photo, PhotoStatus
from processing.evaluation import evaluate, load_dataset

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_identity_finds_its_photos(faces_dir, client_for, photographer, make_user):
    dataset = load_dataset(faces_dir)
    owner = client_for(photographer)
    event = owner.post("/api/photographer/events", {"name": "Real faces"}, format="json").json()
    files = [SimpleUploadedFile(p.name, p.read_bytes()) for p in dataset.event_photos]
    # Distinct display names: people photos share names like 1.jpg.
    for upload, path in zip(files, dataset.event_photos, strict=True):
        upload.name = str(path.relative_to(faces_dir)).replace("/", "__")
    response = owner.post(
        f"/api/photographer/events/{event['id']}/upload-photos", {"photos": files}, format="multipart"
    )
    assert response.status_code == 202, response.json()
    assert response.json()["rejected"] == []
    assert Photo.objects.filter(status=PhotoStatus.DONE).count() == len(dataset.event_photos)

    found: dict[str, set[str]] = {}
    id_to_name = {p.pk: p.filename.replace("__", "/") for p in Photo.objects.all()}
    for identity, selfie_path in dataset.selfies.items():
        client = client_for(make_user(identity))
        assert client.post("/api/events/join", {"code": event["code"]}, format="json").status_code == 200
        selfie = client.post(
            "/api/me/selfie", {"selfie": SimpleUploadedFile(selfie_path.name, selfie_path.read_bytes())}
        )
        assert selfie.status_code == 200, (identity, selfie.json())
        photos = client.get(f"/api/my-photos?event={event['id']}").json()["photos"]
        found[identity] = {id_to_name[p["id"]] for p in photos}

    result = evaluate(dataset.truth, found)
    overall = result["overall"]
    assert overall["precision"] >= 0.98, result["false_matches"]
    assert overall["recall"] >= 0.95, result["misses"]
