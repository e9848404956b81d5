"""Fixtures shared by the page tests: an event whose photos went through the pipeline."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from gallery.models import Photo
from tests.conftest import png_upload
from tests.fakes import scene_png

# Which marker people each photo shows; person 0 is "the attendee" in most tests.
SCENES = {"p0.png": [0, 1], "p1.png": [1], "p2.png": [2, 3], "p3.png": [0]}


@pytest.fixture
def event_photos(
    client_for: Any, photographer: Any, event: Any, fake_backend: Any, django_capture_on_commit_callbacks: Any
) -> dict[str, Photo]:
    """SCENES uploaded to `event` and processed by the marker backend, by file name."""
    files = [png_upload(name, scene_png(people, seed=i)) for i, (name, people) in enumerate(SCENES.items())]
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart"
        )
    assert response.status_code == 202
    return {job["filename"]: Photo.objects.get(pk=job["photo_id"]) for job in response.json()["jobs"]}


@pytest.fixture
def page_client() -> Any:
    """A browser-like client logged in as `user`."""

    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make


def selfie_file(people: list[int], name: str = "me.png") -> Any:
    return png_upload(name, scene_png(people))
