"""The people of an event: stored face groups, and the photographer's merge, split and hide surviving regroupings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from django.urls import reverse

from gallery.models import Event, Face, FaceGroup, Match, Photo
from processing import tasks
from processing.people import cluster_faces
from processing.services import regroup_event
from tests.conftest import png_upload
from tests.fakes import scene_png
from tests.gallery.conftest import selfie_file


def _person(face: Face) -> int:
    """The marker person a face of the marker backend shows."""
    vector = face.vector
    assert vector is not None
    return int(np.argmax(vector))


def _group_of(event: Event, person: int) -> FaceGroup:
    groups = {f.group for f in Face.objects.filter(event=event).select_related("group") if _person(f) == person}
    assert len(groups) == 1, groups
    group = groups.pop()
    assert group is not None
    return group


def _people(client: Any, event: Event, **params: Any) -> Any:
    response = client.get(f"/api/photographer/events/{event.pk}/people", params)
    assert response.status_code == 200, response.content
    return response.json()


def _edit(client: Any, event: Event, group: FaceGroup, body: dict[str, Any]) -> Any:
    return client.post(f"/api/photographer/events/{event.pk}/people/{group.pk}", body, format="json")


def _upload(client: Any, event: Event, name: str, people: list[int], capture: Any) -> Photo:
    with capture(execute=True):
        response = client.post(
            f"/api/photographer/events/{event.pk}/upload-photos",
            {"photos": [png_upload(name, scene_png(people, seed=7))]},
            format="multipart",
        )
    return Photo.objects.get(pk=response.json()["jobs"][0]["photo_id"])


@pytest.fixture
def grouped(event: Event, event_photos: dict[str, Photo]) -> Event:
    """The scenes' event after the refresh task grouped its faces: persons 0 and 1 in two photos, 2 and 3 in one."""
    tasks.refresh_event(event.pk)
    return event


def test_the_people_list_is_paginated_largest_first_with_counts_and_crops(client_for, photographer, grouped):
    body = _people(client_for(photographer), grouped)
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4
    assert [p["photo_count"] for p in body["results"]] == [2, 2, 1, 1]
    first = body["results"][0]
    assert set(first) >= {"id", "photo_count", "face_crop_url", "enrolled", "hidden"}
    crop = client_for(photographer).get(first["face_crop_url"])
    assert crop.status_code == 200
    assert crop["Content-Type"] == "image/jpeg"
    assert crop.content.startswith(b"\xff\xd8")
    paged = _people(client_for(photographer), grouped, page_size=1)
    assert paged["count"] == 4
    assert len(paged["results"]) <= 4


def test_enrolled_says_which_group_a_guest_is_in(client_for, photographer, page_client, member, grouped):
    page_client(member).post(reverse("gallery-selfie"), {"selfie": selfie_file([1])})
    enrolled = {p["id"]: p["enrolled"] for p in _people(client_for(photographer), grouped)["results"]}
    assert enrolled == {g.pk: g.pk == _group_of(grouped, 1).pk for g in FaceGroup.objects.filter(event=grouped)}


def test_regrouping_again_keeps_the_group_ids(grouped):
    before = dict(Face.objects.filter(event=grouped).values_list("pk", "group_id"))
    regroup_event(grouped)
    assert dict(Face.objects.filter(event=grouped).values_list("pk", "group_id")) == before


def test_a_merge_survives_a_regrouping(client_for, photographer, grouped):
    into, other = _group_of(grouped, 0), _group_of(grouped, 2)
    response = _edit(client_for(photographer), grouped, into, {"action": "merge", "group": other.pk})
    assert response.status_code == 200, response.content
    assert response.json()["photo_count"] == 3
    tasks.refresh_event(grouped.pk)
    assert _group_of(grouped, 2).pk == into.pk == _group_of(grouped, 0).pk
    assert not FaceGroup.objects.filter(pk=other.pk).exists()


def test_a_split_survives_a_regrouping(client_for, photographer, grouped, event_photos):
    group = _group_of(grouped, 0)
    face = Face.objects.get(photo=event_photos["p3.png"])
    response = _edit(client_for(photographer), grouped, group, {"action": "split", "face": face.pk})
    assert response.status_code == 200, response.content
    alone = response.json()["id"]
    tasks.refresh_event(grouped.pk)
    face.refresh_from_db()
    assert face.group_id == alone != group.pk
    assert set(Face.objects.filter(group_id=group.pk).values_list("photo_id", flat=True)) == {event_photos["p0.png"].pk}


def test_a_hidden_group_survives_a_regrouping_and_is_never_matched(
    client_for, photographer, page_client, member, grouped, django_capture_on_commit_callbacks
):
    guest = page_client(member)
    guest.post(reverse("gallery-selfie"), {"selfie": selfie_file([0])})
    assert Match.objects.filter(user=member).count() == 2
    group = _group_of(grouped, 0)
    response = _edit(client_for(photographer), grouped, group, {"action": "hide"})
    assert response.status_code == 200
    assert response.json()["hidden"] is True
    assert Match.objects.filter(user=member).count() == 0
    # A new photo of the same person joins the hidden group at the next refresh, and is not matched either.
    _upload(client_for(photographer), grouped, "late.png", [0], django_capture_on_commit_callbacks)
    tasks.refresh_event(grouped.pk)
    assert _group_of(grouped, 0).pk == group.pk
    assert FaceGroup.objects.get(pk=group.pk).hidden
    assert Match.objects.filter(user=member).count() == 0
    # Shown again, the guest finds their photos at the next pass.
    _edit(client_for(photographer), grouped, group, {"action": "show"})
    tasks.refresh_event(grouped.pk)
    assert Match.objects.filter(user=member).count() == 3


@pytest.mark.parametrize(
    "body",
    [{"action": "explode"}, {"action": "merge"}, {"action": "merge", "group": "x"}, {"action": "split", "face": None}],
)
def test_bad_edits_get_a_400(client_for, photographer, grouped, body):
    response = _edit(client_for(photographer), grouped, _group_of(grouped, 0), body)
    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_face_of_another_group_cannot_be_split_off(client_for, photographer, grouped, event_photos):
    face = Face.objects.get(photo=event_photos["p1.png"])
    response = _edit(client_for(photographer), grouped, _group_of(grouped, 0), {"action": "split", "face": face.pk})
    assert response.status_code == 400
    assert "not in this group" in response.json()["detail"]


def test_only_the_owner_sees_and_edits_the_people(client_for, other_photographer, member, page_client, grouped):
    url = f"/api/photographer/events/{grouped.pk}/people"
    assert client_for(other_photographer).get(url).status_code == 404
    assert client_for(member).get(url).status_code == 403
    group = _group_of(grouped, 0)
    assert _edit(client_for(other_photographer), grouped, group, {"action": "hide"}).status_code == 404
    assert page_client(member).get(reverse("gallery-face-crop", args=[group.cover_face_id])).status_code in (403, 404)
    assert not FaceGroup.objects.get(pk=group.pk).hidden


def test_the_list_costs_the_same_few_queries_however_many_groups(
    client_for, photographer, grouped, django_assert_max_num_queries
):
    client = client_for(photographer)
    _people(client, grouped)
    with django_assert_max_num_queries(8):
        _people(client, grouped)


def test_the_studio_pages_list_hide_and_merge_without_javascript(page_client, photographer, grouped):
    client = page_client(photographer)
    assert "All people" in client.get(reverse("gallery-studio-event", args=[grouped.pk])).content.decode()
    url = reverse("gallery-studio-event-people", args=[grouped.pk])
    assert client.get(url).status_code == 200
    group, other = _group_of(grouped, 0), _group_of(grouped, 1)
    assert client.post(url, {"group": group.pk, "action": "hide"}).status_code == 302
    assert FaceGroup.objects.get(pk=group.pk).hidden
    assert client.post(url, {"group": group.pk, "other": other.pk, "action": "merge"}).status_code == 302
    assert _group_of(grouped, 1).pk == group.pk
    page = client.get(url, {"group": group.pk})
    assert 'value="split"' in page.content.decode()


def test_faces_of_one_photo_are_never_grouped_together():
    vectors = np.zeros((3, 128))
    labels = cluster_faces(vectors, np.array([1, 1, 2]), np.full(3, -1), threshold=0.6)
    assert labels[0] != labels[1]
    assert labels[2] == labels[0]


def test_locked_faces_keep_their_label():
    vectors = np.zeros((3, 128))
    vectors[1, 5] = 1.0
    labels = cluster_faces(vectors, np.array([1, 2, 3]), np.array([0, 0, -1]), threshold=0.6)
    assert labels.tolist() == [0, 0, 0]
