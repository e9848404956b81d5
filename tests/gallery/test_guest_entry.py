"""Guest entry without a password, joining by POST only, rate limits, email and sign-in links."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from gallery.guests import GUEST_USERNAME_PREFIX, set_notifications
from gallery.models import AlertSettings, Event, Membership
from tests.gallery.conftest import selfie_file

pytestmark = pytest.mark.django_db


def my_url(event: Event) -> str:
    return reverse("gallery-my-photos", args=[event.pk])


def no_password_field(response: Any) -> None:
    body = response.content.decode()
    assert 'type="password"' not in body, f"a password field on {response.request['PATH_INFO']}"


# --- the event page and joining ------------------------------------------------


def test_the_event_link_never_joins_by_itself(page_client: Any, attendee: User, event: Event) -> None:
    client = page_client(attendee)
    page = client.get(f"/e/{event.code}/")
    assert page.status_code == 200
    assert "Find my photos" in page.content.decode()
    assert not Membership.objects.filter(user=attendee, event=event).exists()


def test_joining_from_another_site_is_refused_without_the_csrf_token(attendee: User, event: Event) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(attendee)
    response = client.post(f"/e/{event.code}/")
    assert response.status_code == 403
    assert not Membership.objects.filter(user=attendee, event=event).exists()


def _queries(client: Client, url: str) -> tuple[int, list[str], bytes]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    # The statements without their literal values (the code, ids).
    shapes = [re.sub(r"'[^']*'|\b\d+\b", "?", query["sql"]) for query in captured.captured_queries]
    return response.status_code, shapes, response.content


@pytest.mark.parametrize("logged_in", [False, True], ids=["visitor", "user"])
def test_unknown_and_existing_codes_cost_the_same_queries(
    logged_in: bool, attendee: User, event: Event, settings: Any
) -> None:
    client = Client()
    if logged_in:
        client.force_login(attendee)
    client.get("/")  # session and user loaded once, as for any page
    known_status, known, _body = _queries(client, f"/e/{event.code}/")
    unknown_status, unknown, body = _queries(client, "/e/ZZZZ2222/")
    assert (known_status, unknown_status) == (200, 404)
    assert known == unknown
    assert len(known) >= 1
    assert b"Check the link" in body


def test_a_visitor_becomes_a_guest_without_a_password_and_reaches_my_photos(
    event: Event, event_photos: Any, settings: Any
) -> None:
    client = Client()
    no_password_field(client.get(f"/e/{event.code}/"))
    joined = client.post(f"/e/{event.code}/")
    assert joined["Location"] == f"/consent/?next={quote(my_url(event), safe='')}"
    guest = User.objects.get(memberships__event=event)
    assert guest.username.startswith(GUEST_USERNAME_PREFIX)
    assert not guest.has_usable_password()
    assert client.session.get_expiry_age() == settings.GUEST_SESSION_DAYS * 24 * 3600
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["max-age"] == settings.GUEST_SESSION_DAYS * 24 * 3600

    consent = client.get(joined["Location"])
    no_password_field(consent)
    to_selfie = client.post("/consent/", {"agree": "on", "next": my_url(event)})
    selfie_page = client.get(to_selfie["Location"])
    no_password_field(selfie_page)
    done = client.post("/selfie/", {"selfie": selfie_file([0]), "next": my_url(event)}, follow=True)
    no_password_field(done)
    assert done.redirect_chain[-1][0] == my_url(event)
    assert "we found you in 2 photos" in done.content.decode()


def test_an_unknown_code_creates_no_guest() -> None:
    response = Client().post("/e/ZZZZ2222/")
    assert response.status_code == 404
    assert not User.objects.exists()


def test_the_home_form_leads_to_the_event_page_without_joining(event: Event) -> None:
    client = Client()
    response = client.post("/join/", {"code": event.code.lower()})
    assert response["Location"] == f"/e/{event.code}/"
    assert list(User.objects.all()) == [event.owner]


@pytest.mark.parametrize("path", ["/e/{code}/", "/join/"])
def test_join_attempts_are_limited_per_user(
    path: str, page_client: Any, attendee: User, event: Event, settings: Any
) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "join": "3/m", "join-ip": "100/m"}
    client = page_client(attendee)
    statuses = [client.post(path.format(code=f"WRONG{i}"), {"code": f"WRONG{i}"}).status_code for i in range(4)]
    assert statuses[-1] == 429
    assert 429 not in statuses[:3]
    # Another user from the same address still may.
    other = User.objects.create_user("other")
    assert page_client(other).post(path.format(code="WRONG9"), {"code": "WRONG9"}).status_code != 429


def test_join_attempts_are_limited_per_address_across_users(page_client: Any, make_user: Any, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "join": "100/m", "join-ip": "3/m"}
    statuses = [page_client(make_user(f"u{i}")).post(f"/e/WRONG{i}/").status_code for i in range(4)]
    assert statuses[:3] == [404, 404, 404]
    assert statuses[3] == 429


def test_api_join_is_limited_per_user(client_for: Any, attendee: User, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "join": "2/m", "join-ip": "100/m"}
    client = client_for(attendee)
    statuses = [client.post("/api/events/join", {"code": f"WRONG{i}"}, format="json").status_code for i in range(3)]
    assert statuses == [404, 404, 429]
    assert "detail" in client.post("/api/events/join", {"code": "X"}, format="json").json()


# --- the API's guests ----------------------------------------------------------


def test_api_guest_gets_a_working_token_without_a_password(event: Event) -> None:
    response = APIClient().post("/api/guests", {"code": event.code.lower()}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["event"] == {"id": event.pk, "name": event.name, "date": None}
    guest = User.objects.get(memberships__event=event)
    assert not guest.has_usable_password()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {body['token']}")
    mine = client.get(f"/api/my-photos?event={event.pk}")
    assert mine.status_code == 200
    assert mine.json()["photos"] == []


@pytest.mark.parametrize(
    ("data", "status"), [({"code": "ZZZZ2222"}, 404), ({}, 400), ({"code": 7}, 400), ({"code": ""}, 400)]
)
def test_api_guest_refuses_bad_codes_with_a_message(data: dict[str, Any], status: int) -> None:
    response = APIClient().post("/api/guests", data, format="json")
    assert response.status_code == status
    assert response.json()["detail"]
    assert not User.objects.exists()


def test_api_guests_are_throttled_per_address_like_sign_up(event: Event, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "auth": "2/m"}
    client = APIClient()
    statuses = [client.post("/api/guests", {"code": event.code}, format="json").status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    assert User.objects.count() == 3  # the photographer and two guests


# --- email, alerts and a password later ---------------------------------------


def test_notifications_api(client_for: Any, attendee: User) -> None:
    client = client_for(attendee)
    assert client.get("/api/me/notifications").json() == {"email": "", "alerts": False}
    saved = client.put("/api/me/notifications", {"email": " Me@Example.COM ", "alerts": True}, format="json")
    assert saved.status_code == 200
    assert saved.json() == {"email": "Me@example.com", "alerts": True}
    assert AlertSettings.objects.get(user=attendee).enabled
    off = client.put("/api/me/notifications", {"email": "", "alerts": False}, format="json")
    assert off.json() == {"email": "", "alerts": False}


@pytest.mark.parametrize(
    "data",
    [
        {"email": "not-an-address", "alerts": False},
        {"email": "", "alerts": True},
        {"email": "a@example.com", "alerts": "yes"},
        {"email": ["a@example.com"], "alerts": False},
        {"email": "x" * 250 + "@example.com", "alerts": False},
    ],
)
def test_notifications_api_refuses_bad_input_with_a_message(
    client_for: Any, attendee: User, data: dict[str, Any]
) -> None:
    response = client_for(attendee).put("/api/me/notifications", data, format="json")
    assert response.status_code == 400
    assert response.json()["detail"]


def test_a_guest_adds_an_email_and_a_password_on_the_account_page(event: Event) -> None:
    client = Client()
    client.post(f"/e/{event.code}/")
    guest = User.objects.get(memberships__event=event)
    page = client.get("/me/")
    assert "Set a password" in page.content.decode()
    client.post("/me/", {"action": "notifications", "email": "guest@example.com", "alerts": "on"})
    guest.refresh_from_db()
    assert guest.email == "guest@example.com"
    assert AlertSettings.objects.get(user=guest).enabled
    bad = client.post("/me/", {"action": "notifications", "email": "nope", "alerts": "on"})
    assert bad.status_code == 200
    assert "Enter a valid email address." in bad.content.decode()
    client.post(
        "/me/", {"action": "password", "new_password1": "Evening-pass-2024", "new_password2": "Evening-pass-2024"}
    )
    guest.refresh_from_db()
    assert guest.has_usable_password()
    assert client.get("/me/").status_code == 200  # still signed in here
    again = Client().post("/login/", {"username": guest.username, "password": "Evening-pass-2024"})
    assert again.status_code == 302


# --- sign-in links -------------------------------------------------------------


def _link_in(body: str) -> str:
    match = re.search(r"http://\S+/login/link/\?\S+", body)
    assert match, body
    return match.group(0)


def test_an_emailed_link_signs_in_once(mailoutbox: list[Any], attendee: User, event: Event, settings: Any) -> None:
    set_notifications(attendee, "me@example.com", False)
    client = Client()
    sent = client.post("/login/email/", {"email": "ME@example.com", "next": my_url(event)})
    assert sent.status_code == 200
    assert len(mailoutbox) == 1
    link = _link_in(mailoutbox[0].body).removeprefix(settings.SITE_URL)
    # Opening the link (a mail scanner does) signs nobody in and uses nothing up.
    page = client.get(link)
    assert page.status_code == 200
    assert "_auth_user_id" not in client.session
    token = re.search(r'name="sesame" value="([^"]+)"', page.content.decode())
    assert token
    signed_in = client.post("/login/link/", {"sesame": token.group(1), "next": my_url(event)})
    assert signed_in["Location"] == my_url(event)
    assert int(client.session["_auth_user_id"]) == attendee.pk
    other_device = Client()
    assert other_device.post("/login/link/", {"sesame": token.group(1)}).status_code == 400
    assert "_auth_user_id" not in other_device.session


def test_an_emailed_link_expires(mailoutbox: list[Any], attendee: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from sesame import tokens_v2

    set_notifications(attendee, "me@example.com", False)
    Client().post("/login/email/", {"email": "me@example.com"})
    token = re.search(r"sesame=([^&\s]+)", mailoutbox[0].body)
    assert token
    real_unpack = tokens_v2.unpack_timestamp

    def an_hour_later(data: bytes) -> tuple[int, bytes]:
        age, rest = real_unpack(data)
        return age + int(timedelta(hours=1).total_seconds()), rest

    monkeypatch.setattr(tokens_v2, "unpack_timestamp", an_hour_later)
    assert Client().post("/login/link/", {"sesame": token.group(1)}).status_code == 400


def test_the_link_answer_does_not_say_whether_the_address_is_known(
    mailoutbox: list[Any], attendee: User, settings: Any
) -> None:
    set_notifications(attendee, "me@example.com", False)
    known = Client().post("/login/email/", {"email": "me@example.com"})
    unknown = Client().post("/login/email/", {"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 200
    strip = lambda response: response.content.decode().replace("me@example.com", "X").replace("nobody@example.com", "X")  # noqa: E731
    assert re.sub(r'value="[^"]+"', "", strip(known)) == re.sub(r'value="[^"]+"', "", strip(unknown))
    assert len(mailoutbox) == 1
    api = APIClient()
    assert api.post("/api/auth/email-link", {"email": "nobody@example.com"}, format="json").status_code == 202
    assert api.post("/api/auth/email-link", {"email": "bad"}, format="json").status_code == 400


def test_a_guest_deletes_their_account_without_a_password(event: Event) -> None:
    client = Client()
    client.post(f"/e/{event.code}/")
    guest = User.objects.get(memberships__event=event)
    page = client.get("/me/delete-account/")
    no_password_field(page)
    response = client.post("/me/delete-account/")
    assert response["Location"] == "/me/deleted/"
    assert not User.objects.filter(pk=guest.pk).exists()


def test_an_account_with_a_password_still_confirms_it(page_client: Any, attendee: User) -> None:
    client = page_client(attendee)
    assert 'type="password"' in client.get("/me/delete-account/").content.decode()
    assert client.post("/me/delete-account/").status_code == 200
    assert User.objects.filter(pk=attendee.pk).exists()


def test_the_sign_in_email_is_sent_by_the_queue_not_the_request(
    mailoutbox: list[Any], attendee: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django_q.brokers import get_broker
    from django_q.conf import Conf

    set_notifications(attendee, "me@example.com", False)
    monkeypatch.setattr(Conf, "SYNC", False)
    broker = get_broker()
    broker.purge_queue()
    try:
        assert Client().post("/login/email/", {"email": "me@example.com"}).status_code == 200
        assert mailoutbox == []
        assert broker.queue_size() == 1
    finally:
        broker.purge_queue()


def test_sign_in_links_for_one_address_are_limited(mailoutbox: list[Any], attendee: User, settings: Any) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "sign-in-link": "2/h", "auth": "100/m"}
    set_notifications(attendee, "me@example.com", False)
    statuses = [Client().post("/login/email/", {"email": e}).status_code for e in ("me@example.com", "ME@example.com ")]
    api = APIClient().post("/api/auth/email-link", {"email": "Me@Example.com"}, format="json")
    assert statuses == [200, 200]
    assert api.status_code == 429
    assert len(mailoutbox) == 2
    assert Client().post("/login/email/", {"email": "other@example.com"}).status_code == 200


def test_an_account_with_a_password_changes_it_on_the_account_page(page_client: Any, attendee: User) -> None:
    client = page_client(attendee)
    assert "Change your password" in client.get("/me/").content.decode()
    wrong = client.post(
        "/me/",
        {"action": "password", "old_password": "nope", "new_password1": "Other-pass-2025", "new_password2": "x"},
    )
    assert wrong.status_code == 200
    attendee.refresh_from_db()
    assert attendee.check_password("Pass-word-1234")
