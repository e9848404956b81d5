"""Every API error is JSON {"detail"} with a 4xx status, also when Django refuses the body while reading it."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db


def assert_json_error(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"detail"} and body["detail"]
    return body["detail"]


def test_101_files_get_json_400(client_for, photographer, event):
    files = [SimpleUploadedFile(f"{n}.jpg", b"x", content_type="image/jpeg") for n in range(101)]
    response = client_for(photographer).post(
        f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart"
    )
    assert "100" in assert_json_error(response, 400)


def test_a_6_mb_json_body_gets_json_413(client_for, photographer):
    body = json.dumps({"name": "x" * (6 * 1024 * 1024)})
    response = client_for(photographer).post("/api/photographer/events", body, content_type="application/json")
    assert "MB" in assert_json_error(response, 413)


def test_1200_form_fields_get_json_400(client_for, photographer):
    fields = {f"field{n}": "v" for n in range(1200)}
    response = client_for(photographer).post("/api/photographer/events", fields)
    assert "fields" in assert_json_error(response, 400)


def test_1200_form_fields_to_login_get_json_413_from_the_login_body_cap(anon_client):
    fields = {f"field{n}": "v" for n in range(1200)}
    response = anon_client.post("/api/auth/token", fields)
    assert "KB" in assert_json_error(response, 413)


def test_an_unknown_api_address_gets_json_404(client_for, attendee):
    assert_json_error(client_for(attendee).get("/api/no-such-thing"), 404)


def test_pages_keep_their_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
