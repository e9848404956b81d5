"""The guest's pages: join link, sign-up and back, consent, selfie feedback, my photos, downloads."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from gallery.downloads import ZipEntry, safe_name, zip_stream
from gallery.models import AttendeeProfile, Event, EventVisibility, Membership, Photo, PhotoStatus, Selfie
from tests.gallery.conftest import selfie_file
from testsupport.media import media_answer

pytestmark = pytest.mark.django_db


def my_url(event):
    return reverse("gallery-my-photos", args=[event.pk])


def enrol(client, event, people):
    return client.post(reverse("gallery-selfie"), {"selfie": selfie_file(people), "next": my_url(event)}, follow=True)


# --- join, sign-up and log-in, straight back to the event -----------------------------------


def test_join_link_shows_the_event_with_a_join_button_and_a_log_in_that_comes_back(event):
    page = Client().get(f"/e/{event.code.lower()}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert event.name in body
    assert f'<form method="post" action="/e/{event.code}/">' in body
    assert f"/login/?next=/e/{event.code.lower()}/" in body
    assert 'type="password"' not in body


def test_unknown_join_link_is_a_friendly_404():
    page = Client().get("/e/NOPE2345/")
    assert page.status_code == 404
    assert "Check the link" in page.content.decode()


def test_sign_up_then_the_join_button_goes_to_consent(event):
    client = Client()
    signup = client.get(f"/signup/?next=/e/{event.code}/")
    assert f"back to <strong>{event.name}</strong>" in signup.content.decode()
    response = client.post(
        "/signup/",
        {
            "username": "guest",
            "password1": "Long-pass-2024!",
            "password2": "Long-pass-2024!",
            "next": f"/e/{event.code}/",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"/e/{event.code}/"
    assert client.get(response["Location"]).status_code == 200
    assert not Membership.objects.filter(user__username="guest", event=event).exists()
    joined = client.post(f"/e/{event.code}/")
    assert joined["Location"] == f"/consent/?next={quote(my_url(event), safe='')}"
    assert Membership.objects.filter(user__username="guest", event=event).exists()


def test_log_in_goes_back_to_the_event(attendee, event):
    response = Client().post(
        "/login/", {"username": "attendee", "password": "Pass-word-1234", "next": f"/e/{event.code}/"}
    )
    assert response["Location"] == f"/e/{event.code}/"


def test_join_button_of_a_consenting_guest_goes_to_the_selfie_and_a_returning_one_to_my_photos(
    page_client, attendee, event
):
    client = page_client(attendee)
    first = client.post(f"/e/{event.code}/")
    assert first["Location"] == f"/selfie/?next={quote(my_url(event), safe='')}"
    again = client.post(f"/e/{event.code}/")
    assert again["Location"] == my_url(event)
    page = client.get(f"/e/{event.code}/")
    assert page.status_code == 200
    assert f'href="{my_url(event)}"' in page.content.decode()


def test_next_to_another_site_is_ignored(event):
    response = Client().post(
        "/signup/",
        {
            "username": "guest",
            "password1": "Long-pass-2024!",
            "password2": "Long-pass-2024!",
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == "/"


# --- consent ------------------------------------------------------------------------------------


def test_consent_says_what_why_how_long_and_how_to_delete(page_client, make_user, event, settings):
    settings.FACE_DATA_RETENTION_DAYS = 45
    shy = make_user("shy", consent=False)
    Membership.objects.create(user=shy, event=event)
    body = page_client(shy).get(f"/consent/?next={my_url(event)}").content.decode()
    for text in ("What we store", "face template", "Why", "For how long", "45 days", "How to delete it"):
        assert text in body
    assert "Delete my face data" in body
    assert reverse("gallery-face-data") in body
    assert "you can still browse all the photos" in body


def test_consent_is_recorded_only_when_ticked(page_client, make_user, event):
    shy = make_user("shy", consent=False)
    client = page_client(shy)
    refused = client.post("/consent/", {"next": my_url(event)})
    assert refused.status_code == 200
    assert AttendeeProfile.objects.get(user=shy).face_consent_at is None
    agreed = client.post("/consent/", {"agree": "on", "next": my_url(event)})
    assert agreed["Location"] == f"/selfie/?next={quote(my_url(event), safe='')}"
    assert AttendeeProfile.objects.get(user=shy).face_consent_at is not None


def test_without_consent_the_guest_browses_all_photos_but_cannot_upload_a_selfie(
    page_client, make_user, event, event_photos
):
    shy = make_user("shy", consent=False)
    Membership.objects.create(user=shy, event=event)
    client = page_client(shy)
    mine = client.get(my_url(event)).content.decode()
    assert "Find my photos" in mine
    everything = client.get(reverse("gallery-all-photos", args=[event.pk])).content.decode()
    assert everything.count('loading="lazy"') == 4
    assert client.get(reverse("gallery-selfie"))["Location"].startswith("/consent/")
    assert (
        media_answer(client.get(reverse("gallery-photo-file", args=[event_photos["p2.png"].pk, "web"]))).status == 200
    )


# --- selfie feedback ------------------------------------------------------------------------------


def test_selfie_without_a_face_says_try_again_in_better_light(page_client, member, event, event_photos):
    page = enrol(page_client(member), event, [])
    assert page.status_code == 200
    assert "No face found, try again in better light." in page.content.decode()
    assert member.selfies.count() == 0


def test_selfie_found_in_n_photos_of_the_event_the_guest_came_from(
    page_client, member, event, event_photos, photographer, fake_backend, client_for, django_capture_on_commit_callbacks
):
    from tests.conftest import png_upload
    from tests.fakes import scene_png

    other = Event.objects.create(owner=photographer, name="Other party")
    Membership.objects.create(user=member, event=other)
    with django_capture_on_commit_callbacks(execute=True):
        client_for(photographer).post(
            f"/api/photographer/events/{other.pk}/upload-photos",
            {"photos": [png_upload(f"o{i}.png", scene_png([0], seed=10 + i)) for i in range(3)]},
            format="multipart",
        )
    page = enrol(page_client(member), event, [0])
    body = page.content.decode()
    # p0 and p3 in this event; the three photos of the other event do not count here.
    assert "Done: we found you in 2 photos." in body
    assert page.redirect_chain[-1][0] == my_url(event)


def test_selfie_with_several_faces_says_it_used_the_largest(page_client, member, event, event_photos):
    from PIL import Image, ImageDraw

    from tests.conftest import png_upload
    from tests.fakes import MARKERS

    image = Image.new("RGB", (400, 300), (128, 128, 128))
    draw = ImageDraw.Draw(image)
    draw.rectangle([10, 10, 49, 49], fill=MARKERS[0])
    draw.rectangle([100, 10, 259, 169], fill=MARKERS[2])
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    page = page_client(member).post(
        "/selfie/", {"selfie": png_upload("two.png", buffer.getvalue()), "next": my_url(event)}, follow=True
    )
    body = page.content.decode()
    assert "Several faces: we used the largest." in body
    assert "Done: we found you in 1 photo." in body


# --- my photos, photo page, downloads ----------------------------------------------------------------


def test_my_photos_grid_is_lazy_and_taps_open_the_photo_page(page_client, member, event, event_photos):
    client = page_client(member)
    enrol(client, event, [0])
    body = client.get(my_url(event)).content.decode()
    assert body.count('loading="lazy"') == 2
    assert "2 photos of you" in body
    photo = event_photos["p0.png"]
    assert reverse("gallery-photo", args=[photo.pk]) in body
    assert reverse("gallery-my-photos-zip", args=[event.pk]) in body
    page = client.get(reverse("gallery-photo", args=[photo.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert f'src="{reverse("gallery-photo-file", args=[photo.pk, "web"])}"' in html
    assert f'alt="Photo from {event.name}, one you are in"' in html
    assert f'href="{reverse("gallery-photo-file", args=[photo.pk, "original"])}" download>Download original' in html
    original = media_answer(client.get(reverse("gallery-photo-file", args=[photo.pk, "original"])))
    assert original.headers["content-disposition"].startswith("attachment")


def test_download_all_streams_a_zip_of_exactly_my_photos(page_client, member, event, event_photos):
    client = page_client(member)
    enrol(client, event, [0])
    response = client.get(reverse("gallery-my-photos-zip", args=[event.pk]))
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="wedding-my-photos.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.testzip() is None
    infos = archive.infolist()
    assert sorted(i.filename.split("-", 1)[1] for i in infos) == ["p0.png", "p3.png"]
    assert {i.compress_type for i in infos} == {zipfile.ZIP_STORED}
    for info in infos:
        photo = event_photos[info.filename.split("-", 1)[1]]
        with photo.original.open("rb") as stored:
            assert archive.read(info) == stored.read()


def test_download_all_without_photos_goes_back_with_a_message(page_client, member, event, event_photos):
    response = page_client(member).get(reverse("gallery-my-photos-zip", args=[event.pk]), follow=True)
    assert "no photos of you to download yet" in response.content.decode()


def test_download_all_is_for_members_only(page_client, make_user, event, event_photos):
    stranger = page_client(make_user("stranger"))
    assert stranger.get(reverse("gallery-my-photos-zip", args=[event.pk])).status_code == 404


class RecordingFile:
    """Stands in for a FieldFile and records when it is opened."""

    def __init__(self, name: str, data: bytes, log: list[str]) -> None:
        self.name, self.data, self.log = name, data, log

    def open(self, mode: str = "rb") -> io.BytesIO:
        self.log.append(self.name)
        return io.BytesIO(self.data)


def test_zip_stream_reads_one_file_at_a_time_and_yields_before_the_end():
    log: list[str] = []
    now = timezone.now()
    entries = [
        ZipEntry(name=f"{i}.jpg", file=RecordingFile(f"f{i}", bytes([i]) * 300_000, log), modified=now)  # type: ignore[arg-type]
        for i in range(3)
    ]
    stream = zip_stream(entries)
    first = next(stream)
    assert log == ["f0"]
    assert first.startswith(b"PK\x03\x04")
    rest = b"".join(stream)
    assert log == ["f0", "f1", "f2"]
    archive = zipfile.ZipFile(io.BytesIO(first + rest))
    assert archive.read("2.jpg") == bytes([2]) * 300_000


def test_zip_names_have_no_paths_and_never_collide():
    assert safe_name(1, "../../etc/passwd") == "001-passwd.jpg"
    assert safe_name(2, "C:\\photos\\IMG 1.JPG") == "002-IMG_1.JPG"
    assert safe_name(3, "", ".png") == "003-photo.png"


# --- new since the last visit, activity ------------------------------------------------------------


def test_new_photos_since_the_last_visit_are_counted_once(page_client, member, event, event_photos):
    client = page_client(member)
    enrol(client, event, [0])
    first = client.get(my_url(event)).content.decode()
    assert "new</strong> since your last visit" not in first
    membership = Membership.objects.get(user=member, event=event)
    assert membership.last_seen_at is not None
    # Both photos of the attendee were processed after an earlier visit.
    Membership.objects.filter(pk=membership.pk).update(last_seen_at=timezone.now() - timedelta(days=1))
    Photo.objects.filter(pk=event_photos["p3.png"].pk).update(finished_at=timezone.now() - timedelta(days=2))
    event.bump_version()  # as processing does
    second = client.get(my_url(event)).content.decode()
    assert "<strong>1 new</strong> since your last visit" in second
    third = client.get(my_url(event)).content.decode()
    assert "since your last visit" not in third


def test_my_photos_marks_the_attendee_active_at_most_hourly(page_client, member, event):
    client = page_client(member)
    long_ago = timezone.now() - timedelta(days=30)
    AttendeeProfile.objects.filter(user=member).update(last_active_at=long_ago)
    client.get(my_url(event))
    refreshed = AttendeeProfile.objects.get(user=member).last_active_at
    assert refreshed > timezone.now() - timedelta(minutes=1)
    recent = timezone.now() - timedelta(minutes=10)
    AttendeeProfile.objects.filter(user=member).update(last_active_at=recent)
    client.get(my_url(event))
    assert AttendeeProfile.objects.get(user=member).last_active_at == recent


def test_api_use_marks_the_attendee_active(client_for, member, event):
    AttendeeProfile.objects.filter(user=member).update(last_active_at=timezone.now() - timedelta(days=30))
    assert client_for(member).get("/api/my-photos").status_code == 200
    assert AttendeeProfile.objects.get(user=member).last_active_at > timezone.now() - timedelta(minutes=1)


# --- visibility on the pages --------------------------------------------------------------------------


def test_own_only_event_pages_show_guests_only_their_photos(page_client, member, event, event_photos):
    event.visibility = EventVisibility.OWN
    event.save()
    client = page_client(member)
    enrol(client, event, [1])  # person 1 is in p0 and p1
    # Such an event opens a guest's photos to a live selfie only (tests/gallery/test_live_selfie_api.py).
    Selfie.objects.filter(user=member).update(live_verified_at=timezone.now())
    body = client.get(reverse("gallery-all-photos", args=[event.pk])).content.decode()
    assert "only the photos they are in" in body
    for name, visible in {"p0.png": True, "p1.png": True, "p2.png": False, "p3.png": False}.items():
        photo = event_photos[name]
        assert (reverse("gallery-photo", args=[photo.pk]) in body) is visible
        expected = 200 if visible else 404
        assert client.get(reverse("gallery-photo", args=[photo.pk])).status_code == expected
        assert media_answer(client.get(reverse("gallery-photo-file", args=[photo.pk, "thumbnail"]))).status == expected
        assert media_answer(client.get(reverse("gallery-photo-file", args=[photo.pk, "original"]))).status == expected


def test_all_photos_event_pages_show_every_processed_photo(page_client, member, event, event_photos):
    Photo.objects.filter(pk=event_photos["p3.png"].pk).update(status=PhotoStatus.FAILED)
    client = page_client(member)
    body = client.get(reverse("gallery-all-photos", args=[event.pk])).content.decode()
    assert "only the photos they are in" not in body
    for name in ("p0.png", "p1.png", "p2.png"):
        assert reverse("gallery-photo", args=[event_photos[name].pk]) in body
    assert client.get(reverse("gallery-photo", args=[event_photos["p3.png"].pk])).status_code == 404


def test_pages_of_an_event_are_hidden_from_strangers(page_client, make_user, event, event_photos):
    stranger = page_client(make_user("stranger"))
    assert stranger.get(my_url(event)).status_code == 404
    assert stranger.get(reverse("gallery-all-photos", args=[event.pk])).status_code == 404
    assert stranger.get(reverse("gallery-photo", args=[event_photos["p0.png"].pk])).status_code == 404
    assert Client().get(my_url(event))["Location"].startswith("/login/")
