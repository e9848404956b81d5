"""The authorization matrix: every /api/ endpoint and the media view x every kind of caller.

EXPECTED says, per endpoint and method, the status each caller must get. The
test makes every request (each in its own rolled-back transaction), fails on
any cell that differs, fails if an /api/ endpoint or method has no row, and
fails if docs/SECURITY.md differs from the table generated from EXPECTED.

It never writes the file on its own. After changing EXPECTED (or the text in
`render`), regenerate the document with the opt-in:

    UPDATE_SECURITY_DOC=1 bash scripts/test tests/test_authorization_matrix.py

The file is then written only when every cell was measured equal to EXPECTED.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import URLPattern
from rest_framework.test import APIClient

from gallery.models import CoPhotographer, Event, FaceGroup, Membership, Photo, PhotoStatus
from photoevent.urls import api_patterns
from tests.conftest import jpeg_upload, png_upload
from tests.fakes import scene_png
from testsupport.media import media_answer

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parent.parent
SECURITY_MD = REPO / "docs" / "SECURITY.md"
# Set to 1 to rewrite SECURITY_MD from EXPECTED (only when every cell matches).
UPDATE_ENV = "UPDATE_SECURITY_DOC"
# What follows this line in SECURITY_MD is written by hand and kept as it is.
HAND_WRITTEN = "<!-- Written by hand from here on: the matrix test keeps what follows. -->"

ROLES = ["anonymous", "attendee", "other_attendee", "owner", "co_photographer", "other_photographer", "staff"]
ROLE_TITLES = {
    "anonymous": "anonymous",
    "attendee": "attendee (member)",
    "other_attendee": "attendee of another event",
    "owner": "photographer (owner)",
    "co_photographer": "co-photographer",
    "other_photographer": "other photographer",
    "staff": "staff",
}


@dataclass
class World:
    event: Event
    other_event: Event
    done_photo: Photo
    failed_photo: Photo
    users: dict[str, Any]


@dataclass(frozen=True)
class Row:
    """One endpoint and method: the URL name, a display path and the expected status per role."""

    name: str
    method: str
    path: str
    expected: tuple[int, int, int, int, int, int, int]
    request: Callable[[APIClient, World, str], Any]
    note: str = ""
    # "token" (Authorization: Token) or "session" (logged in, as the pages are).
    auth: str = "token"


def get(url: Callable[[World], str]) -> Callable[[APIClient, World, str], Any]:
    return lambda client, world, role: client.get(url(world))


def post_json(url: Callable[[World], str], data: Callable[[World, str], dict[str, Any]]) -> Callable[..., Any]:
    return lambda client, world, role: client.post(url(world), data(world, role), format="json")


def upload(client: APIClient, world: World, role: str) -> Any:
    files = [jpeg_upload(f"{role}.jpg", colour=(ROLES.index(role) * 40, 10, 10))]
    return client.post(
        f"/api/photographer/events/{world.event.pk}/upload-photos", {"photos": files}, format="multipart"
    )


def selfie(client: APIClient, world: World, role: str) -> Any:
    return client.post("/api/me/selfie", {"selfie": png_upload("me.png", scene_png([0]))}, format="multipart")


def live_selfie(client: APIClient, world: World, role: str) -> Any:
    challenge = client.post("/api/me/selfie/challenge").json()
    frames = [jpeg_upload(f"{role}.jpg")]
    return client.post("/api/me/selfie/live", {"nonce": challenge.get("nonce", "x"), "frames": frames})


def delete_account(client: APIClient, world: World, role: str) -> Any:
    return client.delete("/api/me", {"password": "Pass-word-1234"}, format="json")


def credentials(world: World, role: str) -> dict[str, str]:
    user = world.users["attendee" if role == "anonymous" else role]
    return {"username": user.username, "password": "Pass-word-1234"}


def _group(world: World) -> int:
    """A face group of the event (the people view), made on first use."""
    return FaceGroup.objects.get_or_create(event=world.event)[0].pk


A, E, P = "attendee", "event", "photographer"
# anonymous, attendee, other_attendee, owner, co_photographer, other_photographer, staff
EXPECTED = [
    Row("api-auth-token", "POST", "/api/auth/token", (200,) * 7, post_json(lambda w: "/api/auth/token", credentials),
        "credentials in the body; the caller's own token is ignored"),
    Row("api-auth-register", "POST", "/api/auth/register", (201,) * 7,
        post_json(lambda w: "/api/auth/register", lambda w, r: {"username": f"new-{r}", "password": "Fresh-pass-987"}),
        "anyone may open an account"),
    Row("api-auth-logout", "POST", "/api/auth/logout", (401, 204, 204, 204, 204, 204, 204),
        lambda c, w, r: c.post("/api/auth/logout"), "ends the token the request carries"),
    Row("api-auth-logout-all", "POST", "/api/auth/logout-all", (401, 204, 204, 204, 204, 204, 204),
        lambda c, w, r: c.post("/api/auth/logout-all"), "ends every token of the caller's account"),
    Row("api-me", "DELETE", "/api/me", (401, 200, 200, 409, 200, 409, 200), delete_account,
        "the caller's own account, confirmed with its password; a photographer who owns events deletes "
        "them first (409)"),
    Row("api-me-face-data", "DELETE", "/api/me/face-data", (401, 200, 200, 200, 200, 200, 200),
        lambda c, w, r: c.delete("/api/me/face-data"), "the caller's own selfies, matches and consent"),
    Row("api-photographer-events", "GET", "/api/photographer/events", (401, 403, 403, 200, 200, 200, 403),
        get(lambda w: "/api/photographer/events"),
        "each photographer sees the events they own or were added to as a co-photographer"),
    Row("api-photographer-events", "POST", "/api/photographer/events", (401, 403, 403, 201, 201, 201, 403),
        post_json(lambda w: "/api/photographer/events", lambda w, r: {"name": "New"})),
    Row("api-photographer-event", "GET", "/api/photographer/events/{id}", (401, 403, 403, 200, 200, 404, 403),
        get(lambda w: f"/api/photographer/events/{w.event.pk}"),
        "non-photographers get 403 before the id is looked at; another photographer gets 404, as for an "
        "event that does not exist; a photographer who joined the event as a guest gets 403"),
    Row("api-photographer-upload", "POST", "/api/photographer/events/{id}/upload-photos",
        (401, 403, 403, 202, 202, 404, 403), upload),
    Row("api-photographer-event-photos", "GET", "/api/photographer/events/{id}/photos",
        (401, 403, 403, 200, 200, 404, 403), get(lambda w: f"/api/photographer/events/{w.event.pk}/photos")),
    Row("api-photographer-event-quality", "GET", "/api/photographer/events/{id}/quality",
        (401, 403, 403, 200, 403, 404, 403), get(lambda w: f"/api/photographer/events/{w.event.pk}/quality"),
        "the face quality report is the owner's"),
    Row("api-photographer-event-watermark", "GET", "/api/photographer/events/{id}/watermark",
        (401, 403, 403, 200, 403, 404, 403), get(lambda w: f"/api/photographer/events/{w.event.pk}/watermark")),
    Row("api-photographer-event-watermark", "PUT", "/api/photographer/events/{id}/watermark",
        (401, 403, 403, 200, 403, 404, 403),
        lambda client, world, role: client.put(
            f"/api/photographer/events/{world.event.pk}/watermark", {"guests_get_originals": True}, format="json"
        ),
        "only the owner changes the watermark; a change re-renders the event's photos on the queue"),
    Row("api-photographer-event-people", "GET", "/api/photographer/events/{id}/people",
        (401, 403, 403, 200, 403, 404, 403), get(lambda w: f"/api/photographer/events/{w.event.pk}/people")),
    Row("api-photographer-event-person", "GET", "/api/photographer/events/{id}/people/{group}",
        (401, 403, 403, 200, 403, 404, 403),
        get(lambda w: f"/api/photographer/events/{w.event.pk}/people/{_group(w)}")),
    Row("api-photographer-event-person", "POST", "/api/photographer/events/{id}/people/{group}",
        (401, 403, 403, 200, 403, 404, 403),
        post_json(
            lambda w: f"/api/photographer/events/{w.event.pk}/people/{_group(w)}", lambda w, r: {"action": "show"}
        ),
        "merge, split, hide and show: only the owner"),
    Row("api-photographer-event", "DELETE", "/api/photographer/events/{id}", (401, 403, 403, 204, 403, 404, 403),
        lambda c, w, r: c.delete(f"/api/photographer/events/{w.event.pk}"),
        "only the owner deletes the event or changes its settings; a co-photographer gets 403"),
    Row("api-photographer-event-photographers", "GET", "/api/photographer/events/{id}/photographers",
        (401, 403, 403, 200, 200, 404, 403), get(lambda w: f"/api/photographer/events/{w.event.pk}/photographers")),
    Row("api-photographer-event-photographers", "POST", "/api/photographer/events/{id}/photographers",
        (401, 403, 403, 201, 403, 404, 403),
        post_json(lambda w: f"/api/photographer/events/{w.event.pk}/photographers",
                  lambda w, r: {"username": w.users["other_photographer"].username}),
        "the owner adds a photographer by username; co-photographers may upload and follow the event, "
        "not add others"),
    Row("api-photographer-event-photographer", "DELETE", "/api/photographer/events/{id}/photographers/{username}",
        (401, 403, 403, 204, 403, 404, 403),
        lambda c, w, r: c.delete(
            f"/api/photographer/events/{w.event.pk}/photographers/{w.users['co_photographer'].username}"
        )),
    Row("api-events-join", "POST", "/api/events/join", (401, 200, 200, 200, 200, 200, 200),
        post_json(lambda w: "/api/events/join", lambda w, r: {"code": w.event.code}),
        "knowing the event code is the authorization"),
    Row("api-guests", "POST", "/api/guests", (201,) * 7,
        post_json(lambda w: "/api/guests", lambda w, r: {"code": w.event.code}),
        "a new guest account without a password; knowing the event code is the authorization"),
    Row("api-auth-email-link", "POST", "/api/auth/email-link", (202,) * 7,
        post_json(lambda w: "/api/auth/email-link", lambda w, r: {"email": f"{r}@example.com"}),
        "the same answer whether or not an account has the address"),
    Row("api-me-selfie", "POST", "/api/me/selfie", (401, 200, 200, 200, 200, 200, 200), selfie),
    Row("api-me-selfie-challenge", "POST", "/api/me/selfie/challenge", (401, 200, 200, 200, 200, 200, 200),
        lambda client, world, role: client.post("/api/me/selfie/challenge")),
    Row("api-me-selfie-live", "POST", "/api/me/selfie/live", (401, 400, 400, 400, 400, 400, 400), live_selfie,
        "any account checks its own selfie; 400 here because one plain frame is no live face"),
    Row("api-me-notifications", "GET", "/api/me/notifications", (401, 200, 200, 200, 200, 200, 200),
        get(lambda w: "/api/me/notifications"), "the caller's own settings only"),
    Row("api-me-notifications", "PUT", "/api/me/notifications", (401, 200, 200, 200, 200, 200, 200),
        lambda c, w, r: c.put("/api/me/notifications", {"email": f"{r}@example.com", "alerts": True}, format="json")),
    Row("api-my-photos", "GET", "/api/my-photos?event={id}", (401, 200, 404, 200, 200, 404, 200),
        get(lambda w: f"/api/my-photos?event={w.event.pk}"),
        "404 for whoever is neither member, owner nor staff, so that event ids do not leak"),
    Row("api-all-photos", "GET", "/api/all-photos?event={id}", (401, 200, 404, 200, 200, 404, 200),
        get(lambda w: f"/api/all-photos?event={w.event.pk}")),
    Row("api-photo-not-me", "POST", "/api/photos/{id}/not-me", (401, 204, 404, 403, 403, 404, 403),
        lambda c, w, r: c.post(f"/api/photos/{w.done_photo.pk}/not-me"),
        "only the event's guests correct their matches: its photographer and staff see the photo, so 403"),
    Row("api-photo-not-me", "DELETE", "/api/photos/{id}/not-me", (401, 204, 404, 403, 403, 404, 403),
        lambda c, w, r: c.delete(f"/api/photos/{w.done_photo.pk}/not-me")),
    Row("api-photo-me", "POST", "/api/photos/{id}/me", (401, 400, 404, 403, 403, 404, 403),
        lambda c, w, r: c.post(f"/api/photos/{w.done_photo.pk}/me", {}, format="json"),
        "the photo has no face here, so the guest gets 400 with the faces to choose from"),
    Row("api-admin-queue-stats", "GET", "/api/admin/queue/stats", (401, 403, 403, 403, 403, 403, 200),
        get(lambda w: "/api/admin/queue/stats")),
    Row("api-admin-job", "GET", "/api/admin/queue/jobs/{job_id}", (401, 403, 403, 403, 403, 403, 200),
        get(lambda w: f"/api/admin/queue/jobs/{w.done_photo.job_id}")),
    Row("api-admin-job-retry", "POST", "/api/admin/queue/jobs/{job_id}/retry", (401, 403, 403, 403, 403, 403, 200),
        lambda c, w, r: c.post(f"/api/admin/queue/jobs/{w.failed_photo.job_id}/retry"), "a failed job"),
    Row("api-admin-cache-clear", "POST", "/api/admin/cache/clear", (401, 403, 403, 403, 403, 403, 200),
        lambda c, w, r: c.post("/api/admin/cache/clear")),
    Row("api-admin-aws-metrics", "GET", "/api/admin/aws-metrics", (401, 403, 403, 403, 403, 403, 200),
        get(lambda w: "/api/admin/aws-metrics")),
    Row("api-admin-aws-costs", "GET", "/api/admin/aws-metrics/costs", (401, 403, 403, 403, 403, 403, 200),
        get(lambda w: "/api/admin/aws-metrics/costs")),
    Row("gallery-photo-file", "GET", "/media/photos/{id}/thumbnail (session)", (404, 200, 404, 200, 200, 404, 200),
        get(lambda w: f"/media/photos/{w.done_photo.pk}/thumbnail"),
        "404, not 403, so that a stranger cannot tell which photo ids exist", auth="session"),
    Row("gallery-photo-file", "GET", "/media/photos/{id}/original (session)", (404, 200, 404, 200, 200, 404, 200),
        get(lambda w: f"/media/photos/{w.done_photo.pk}/original"), auth="session"),
    Row("gallery-photo-file", "GET", "/media/photos/{id}/thumbnail (token)", (404, 200, 404, 200, 200, 404, 200),
        get(lambda w: f"/media/photos/{w.done_photo.pk}/thumbnail"),
        "API clients open the `thumbnail_url`/`url`/`original_url` that my-photos and all-photos "
        "give them with the same `Authorization: Token`"),
]  # fmt: skip


def api_endpoints() -> set[tuple[str, str]]:
    """(URL name, method) of every /api/ endpoint, from photoevent/urls.py."""
    found = set()
    for pattern in api_patterns:
        assert isinstance(pattern, URLPattern)
        view_class = pattern.callback.view_class  # type: ignore[attr-defined]
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view_class, method):
                found.add((str(pattern.name), method.upper()))
    return found


@pytest.fixture(autouse=True)
def no_throttling(settings: Any) -> None:
    # Every row calls from one address; the limits have tests of their own.
    settings.RATE_LIMITS = {name: "10000/m" for name in settings.RATE_LIMITS}


@pytest.fixture
def world(make_user, photographer, other_photographer, attendee, staff, event, member, fake_backend) -> World:
    outsider = make_user("outsider")
    other_event = Event.objects.create(owner=other_photographer, name="Other party")
    Membership.objects.create(user=outsider, event=other_event)
    done = Photo.objects.create(
        event=event, filename="done.jpg", sha256="d" * 64, format="JPEG", status=PhotoStatus.DONE
    )
    for field in ("original", "thumbnail"):
        getattr(done, field).save(f"{field}.jpg", ContentFile(jpeg_upload().read()), save=False)
    done.save()
    failed = Photo.objects.create(
        event=event, filename="failed.jpg", sha256="f" * 64, format="JPEG", status=PhotoStatus.FAILED, error="x"
    )
    co_photographer = make_user("co-photographer", photographer=True)
    CoPhotographer.objects.create(event=event, user=co_photographer)
    users = {
        "attendee": member,
        "other_attendee": outsider,
        "owner": photographer,
        "co_photographer": co_photographer,
        "other_photographer": other_photographer,
        "staff": staff,
    }
    return World(event=event, other_event=other_event, done_photo=done, failed_photo=failed, users=users)


def actual_status(row: Row, role: str, world: World, client_for: Callable[..., APIClient]) -> int:
    if role == "anonymous":
        client = APIClient()
    elif row.auth == "session":
        client = APIClient()
        client.force_login(world.users[role])
    else:
        client = client_for(world.users[role])
    with transaction.atomic():
        # Media on S3 answers with a redirect to a presigned URL: the status
        # that counts is the one the client finally gets.
        status = media_answer(row.request(client, world, role)).status
        transaction.set_rollback(True)
    return status


def render(rows: list[Row]) -> str:
    header = "| endpoint | " + " | ".join(ROLE_TITLES[r] for r in ROLES) + " |"
    lines = [header, "|" + " --- |" * (len(ROLES) + 1)]
    for row in rows:
        cells = " | ".join(str(code) for code in row.expected)
        lines.append(f"| `{row.method} {row.path}` | {cells} |")
    notes = [f"- `{row.method} {row.path}`: {row.note}." for row in rows if row.note]
    return "\n".join(
        [
            "# Security: the authorization matrix",
            "",
            "Generated by `tests/test_authorization_matrix.py` from its expectations, which the test checks",
            "cell by cell and compares with this file. Do not edit by hand: change the expectations in the",
            "test, then regenerate with",
            "`UPDATE_SECURITY_DOC=1 bash scripts/test tests/test_authorization_matrix.py`",
            "(written only when every cell was measured equal to them).",
            "",
            "Callers: *anonymous* has no session or token; *attendee (member)* joined the event; *attendee of",
            "another event* joined a different event; *photographer (owner)* owns the event; *other photographer*",
            "owns a different event; *co-photographer* is a photographer the owner added to the event;",
            "*staff* is `is_staff` and not a photographer. Requests use",
            "`Authorization: Token <key>` unless the row says *session* (logged in, as the pages are).",
            "`{id}` is the owner's event (or one of its processed photos), `{job_id}` one of its photos' jobs.",
            "",
            "## The policy",
            "",
            "One rule for the API and the pages, applied by `gallery/access.py`:",
            "",
            "- **404** for an object the caller may not know about, exactly as for one that does not exist, so",
            "  that ids do not leak. An event is known to its owner, its co-photographers, its members and staff;",
            "  a photo to those who may see it (an event member sees only the photos they are in when the event",
            "  shows guests their own photos only).",
            "- **403** for a known object the caller may not change: a guest of an event (even one who is a",
            "  photographer) asking for that event's photographer endpoints or studio pages, or to delete one",
            "  of its photos; a co-photographer asking to delete the event, change its settings or its",
            "  photographers (they upload to it and follow its progress and photos, as the owner does).",
            "  The photographer endpoints answer 403 to anyone who is not a photographer, and",
            "  the staff endpoints to anyone who is not staff, before any id is looked at, so these 403s say",
            "  nothing about which ids exist.",
            "- Joining by code (`POST /api/events/join`, `/e/<code>/`) is open to anyone who knows the code;",
            "  an unknown code is a 404.",
            "- **401** from the API when the caller is not authenticated (DRF answers with",
            "  `WWW-Authenticate: Token`); the pages redirect to the login page instead.",
            "",
            "The access layer raises Django's `Http404` and `PermissionDenied`; the pages render them as error",
            'pages and the API\'s exception handler as JSON `{"detail": ...}` with the same status.',
            "",
            "## The matrix",
            "",
            *lines,
            "",
            "Notes:",
            "",
            *notes,
            "- Staff are not photographers: the photographer endpoints answer them 403; they see events and",
            "  photos through my-photos/all-photos, the media view, the staff endpoints and /admin/.",
            "",
        ]
    )


def test_authorization_matrix(world: World, client_for: Callable[..., APIClient]) -> None:
    covered = {(row.name, row.method) for row in EXPECTED}
    missing = api_endpoints() - covered
    assert not missing, f"/api/ endpoints without a row in the authorization matrix: {sorted(missing)}"

    wrong = []
    for row in EXPECTED:
        for role, expected in zip(ROLES, row.expected, strict=True):
            status = actual_status(row, role, world, client_for)
            if status != expected:
                wrong.append(f"{row.method} {row.path} as {role}: {status}, expected {expected}")
    assert not wrong, "wrong cells in the authorization matrix:\n" + "\n".join(wrong)

    current = SECURITY_MD.read_text() if SECURITY_MD.exists() else ""
    kept = current[current.index(HAND_WRITTEN) :] if HAND_WRITTEN in current else ""
    generated = render(EXPECTED) + (f"\n{kept}" if kept else "")
    if os.environ.get(UPDATE_ENV) == "1":
        SECURITY_MD.parent.mkdir(exist_ok=True)
        SECURITY_MD.write_text(generated)
        current = generated
    assert current == generated, (
        f"{SECURITY_MD} differs from the matrix's expectations; regenerate it with "
        f"{UPDATE_ENV}=1 bash scripts/test tests/test_authorization_matrix.py"
    )
