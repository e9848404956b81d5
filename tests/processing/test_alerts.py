"""News of new photos by email: one digest for a batch, the throttle, retries, unsubscribing.

The emails go to a real SMTP server process (aiosmtpd) on a free port. The
queue runs in sync mode, as for every test about a task; a digest scheduled
for later is run the way the cluster's scheduler would run it once due.
"""

from __future__ import annotations

import ast
import mailbox
import os
import random
import re
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django.utils.module_loading import import_string
from django_q.models import Schedule

from gallery.guests import set_notifications
from gallery.models import AlertDelivery, AlertSettings, AlertStatus, Event, Match, Photo
from processing import alerts
from processing.services import enrol_selfie, mark_not_me, schedule_match_alerts
from tests.conftest import png_upload
from tests.fakes import scene_png
from testsupport.processes import Proc, free_port, spawn
from testsupport.waiting import wait_for

pytestmark = pytest.mark.django_db

GUEST_EMAIL = "guest@example.com"


@dataclass
class SmtpServer:
    port: int
    maildir: Path
    process: Proc

    def messages(self) -> list[Message]:
        return list(mailbox.Maildir(self.maildir, create=False))


def text_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def smtp_server(tmp_path: Path, settings: Any) -> Iterator[SmtpServer]:
    """aiosmtpd in a process of its own, storing what it receives in a maildir; the settings point at it."""
    port = free_port()
    maildir = tmp_path / "maildir"
    argv = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}", "-c", "aiosmtpd.handlers.Mailbox"]
    process = spawn("aiosmtpd", [*argv, str(maildir)], tmp_path / "smtp.log", dict(os.environ))
    try:
        wait_for(lambda: process.alive() and _accepts(port), 30, "the SMTP server to listen")
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_USE_TLS = False
        yield SmtpServer(port, maildir, process)
    finally:
        process.kill()


@pytest.fixture
def guest(member: User, event: Event, fake_backend: Any, settings: Any) -> User:
    """A member of `event` (marker person 0) with a selfie, an email address and alerts on."""
    settings.ALERT_BATCH_DELAY = 120
    enrol_selfie(member, png_upload("me.png", scene_png([0])))
    set_notifications(member, GUEST_EMAIL, True)
    return member


def upload(client_for: Any, photographer: User, event: Event, scenes: list[list[int]], capture: Any, seed: int) -> None:
    files = [png_upload(f"s{seed}-{i}.png", scene_png(people, seed=seed * 10 + i)) for i, people in enumerate(scenes)]
    with capture(execute=True):
        response = client_for(photographer).post(
            f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart"
        )
    assert response.status_code == 202


def run_alert_schedules() -> list[Any]:
    """Run the alert tasks scheduled for later, as the cluster's scheduler does when they are due."""
    results = []
    for due in Schedule.objects.filter(func__startswith="processing.alerts.").order_by("next_run"):
        due.delete()
        results.append(import_string(due.func)(*ast.literal_eval(due.args or "()")))
    return results


def time_passes(user: User) -> None:
    """The scheduled digest's time has come."""
    AlertSettings.objects.filter(user=user, scheduled_for__isnull=False).update(scheduled_for=timezone.now())


def test_several_new_photos_make_exactly_one_digest(
    smtp_server: SmtpServer,
    guest: User,
    event: Event,
    photographer: User,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    upload(client_for, photographer, event, [[0], [0, 1], [0, 2], [3]], django_capture_on_commit_callbacks, seed=1)
    assert Match.objects.filter(user=guest).count() == 3
    # One digest scheduled for the whole batch, nothing sent yet.
    assert Schedule.objects.filter(func=alerts.SEND_MATCH_DIGEST).count() == 1
    assert smtp_server.messages() == []

    time_passes(guest)
    assert run_alert_schedules() == ["sent"]
    messages = wait_for(smtp_server.messages, 10, "the digest to reach the SMTP server")
    assert len(messages) == 1
    digest = messages[0]
    assert digest["To"] == GUEST_EMAIL
    assert digest["Subject"] == f"3 new photos of you from {event.name}"
    body = text_of(digest)
    assert f"{settings.SITE_URL}/events/{event.pk}/" in body
    assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    delivery = AlertDelivery.objects.get(user=guest)
    assert (delivery.status, delivery.photo_count, delivery.attempts) == (AlertStatus.SENT, 3, 1)

    # More photos soon after: one more digest, not before ALERT_MIN_INTERVAL.
    upload(client_for, photographer, event, [[0], [0, 3]], django_capture_on_commit_callbacks, seed=2)
    state = AlertSettings.objects.get(user=guest)
    assert state.last_sent_at is not None and state.scheduled_for is not None
    assert state.scheduled_for - state.last_sent_at >= timedelta(minutes=settings.ALERT_MIN_INTERVAL)
    assert alerts.send_match_digest(guest.pk) == "skipped"  # run early, e.g. a duplicate delivery
    assert len(smtp_server.messages()) == 1

    # A digest that comes due counts only what is new since the last one.
    time_passes(guest)
    assert run_alert_schedules() == ["sent"]
    wait_for(lambda: len(smtp_server.messages()) == 2, 10, "the second digest")
    assert AlertDelivery.objects.filter(user=guest).order_by("created_at").last().photo_count == 2  # type: ignore[union-attr]


def test_the_unsubscribe_link_works_without_a_session(
    smtp_server: SmtpServer,
    guest: User,
    event: Event,
    photographer: User,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    upload(client_for, photographer, event, [[0]], django_capture_on_commit_callbacks, seed=3)
    time_passes(guest)
    run_alert_schedules()
    [message] = wait_for(smtp_server.messages, 10, "the digest")
    body = text_of(message)
    link = re.search(r"http://\S+/alerts/unsubscribe/\S+/", body)
    assert link
    path = link.group(0).removeprefix(settings.SITE_URL)
    assert re.sub(r"\s", "", message["List-Unsubscribe"]) == f"<{link.group(0)}>"

    browser = Client(enforce_csrf_checks=True)  # no session, no log-in
    page = browser.get(path)
    assert page.status_code == 200
    assert AlertSettings.objects.get(user=guest).enabled  # opening the link changes nothing
    done = browser.post(path)
    assert done.status_code == 200
    assert "no more emails" in done.content.decode()
    assert not AlertSettings.objects.get(user=guest).enabled

    # No alert afterwards.
    upload(client_for, photographer, event, [[0]], django_capture_on_commit_callbacks, seed=4)
    time_passes(guest)
    assert run_alert_schedules() == []
    assert len(smtp_server.messages()) == 1


@pytest.mark.parametrize("token", ["1:forged", "nonsense", "2"])
def test_a_forged_unsubscribe_link_is_a_400(token: str, guest: User) -> None:
    response = Client().post(f"/alerts/unsubscribe/{token}/")
    assert response.status_code == 400
    assert AlertSettings.objects.get(user=guest).enabled


def test_a_failed_send_is_retried_with_backoff_then_shown_to_staff(
    guest: User,
    event: Event,
    photographer: User,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
    staff: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens there
    settings.ALERT_MAX_ATTEMPTS = 3
    # The jitter draws its smallest delay: the retry still waits half the base.
    monkeypatch.setattr(random, "uniform", lambda low, high: low)
    upload(client_for, photographer, event, [[0]], django_capture_on_commit_callbacks, seed=5)
    time_passes(guest)
    before = timezone.now()
    assert run_alert_schedules() == ["retrying"]
    delivery = AlertDelivery.objects.get(user=guest)
    assert delivery.status == AlertStatus.RETRYING
    assert "ConnectionRefusedError" in delivery.error
    assert delivery.next_attempt_at is not None
    assert delivery.next_attempt_at >= before + timedelta(seconds=settings.ALERT_RETRY_BASE_DELAY / 2)
    assert Schedule.objects.filter(func=alerts.DELIVER_ALERT).count() == 1
    assert run_alert_schedules() == ["retrying"]
    assert run_alert_schedules() == ["failed"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == (AlertStatus.FAILED, 3)
    assert "gave up after 3 attempts" in delivery.error
    assert not Schedule.objects.filter(func=alerts.DELIVER_ALERT).exists()

    admin = Client()
    User.objects.filter(pk=staff.pk).update(is_superuser=True)
    admin.force_login(staff)
    listing = admin.get("/admin/gallery/alertdelivery/")
    assert listing.status_code == 200
    assert "ConnectionRefusedError" in listing.content.decode()


def test_staff_can_send_a_failed_digest_again(
    smtp_server: SmtpServer, guest: User, staff: User, django_capture_on_commit_callbacks: Any
) -> None:
    delivery = AlertDelivery.objects.create(
        user=guest, email=GUEST_EMAIL, photo_count=1, events={}, status=AlertStatus.FAILED, attempts=5, error="x"
    )
    admin = Client()
    User.objects.filter(pk=staff.pk).update(is_superuser=True)
    admin.force_login(staff)
    admin.post(
        "/admin/gallery/alertdelivery/", {"action": "send_again", "_selected_action": [delivery.pk]}, follow=True
    )
    delivery.refresh_from_db()
    assert delivery.status == AlertStatus.SENT
    wait_for(smtp_server.messages, 10, "the digest sent again")


def test_no_alerts_after_alert_days(guest: User, event: Event, settings: Any) -> None:
    Match.objects.filter(user=guest).delete()
    event.date = timezone.localdate() - timedelta(days=settings.ALERT_DAYS + 1)
    event.save()
    assert schedule_match_alerts([guest.pk], event.pk) == 0
    event.date = timezone.localdate() - timedelta(days=settings.ALERT_DAYS)
    event.save()
    assert schedule_match_alerts([guest.pk], event.pk) == 1


def test_scheduling_is_idempotent_and_only_for_those_who_asked(
    guest: User, event: Event, make_user: Any, settings: Any
) -> None:
    quiet = make_user("quiet")
    assert schedule_match_alerts([guest.pk, quiet.pk], event.pk) == 1
    assert schedule_match_alerts([guest.pk, quiet.pk], event.pk) == 0
    assert Schedule.objects.filter(func=alerts.SEND_MATCH_DIGEST).count() == 1


def test_photos_seen_on_my_photos_are_not_news(
    guest: User,
    event: Event,
    photographer: User,
    client_for: Any,
    django_capture_on_commit_callbacks: Any,
    mailoutbox: list[Any],
) -> None:
    upload(client_for, photographer, event, [[0]], django_capture_on_commit_callbacks, seed=6)
    viewer = Client()
    viewer.force_login(guest)
    assert viewer.get(f"/events/{event.pk}/").status_code == 200
    time_passes(guest)
    assert run_alert_schedules() == ["nothing new"]
    assert mailoutbox == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_sends_one_digest_for_a_batch(
    start_cluster: Any, smtp_server: SmtpServer, guest: User, event: Event, photographer: User, client_for: Any
) -> None:
    """The whole way on the queue: photos processed by qcluster, the digest scheduled, sent by it to aiosmtpd."""
    files = [png_upload(f"c{i}.png", scene_png(people, seed=90 + i)) for i, people in enumerate([[0], [0, 1], [0, 2]])]
    response = client_for(photographer).post(
        f"/api/photographer/events/{event.pk}/upload-photos", {"photos": files}, format="multipart"
    )
    assert response.status_code == 202
    assert smtp_server.messages() == []  # nothing is sent by the request
    cluster = start_cluster(
        EMAIL_BACKEND="smtp",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp_server.port),
        # Every photo of the batch is done long before: they are one task.
        ALERT_BATCH_DELAY="20",
        PHOTO_QUEUE_BATCH_SIZE="5",
    )
    # django-q2's scheduler looks at due schedules about once a minute.
    messages = wait_for(smtp_server.messages, 180, "the digest from the cluster")
    assert Match.objects.filter(user=guest).count() == 3
    assert messages[0]["Subject"] == f"3 new photos of you from {event.name}"
    wait_for(
        lambda: AlertDelivery.objects.filter(user=guest, status=AlertStatus.SENT).exists(), 30, "the delivery's status"
    )
    wait_for(lambda: "Sent digest" in cluster.log, 30, "the cluster's log line")
    assert len(smtp_server.messages()) == 1


def test_the_digest_is_written_in_the_language_alerts_were_asked_in(
    guest: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.utils import translation

    from gallery import alerts as composing

    with translation.override("fr"):
        set_notifications(guest, GUEST_EMAIL, True)
    assert AlertSettings.objects.get(user=guest).language == "fr"
    languages: list[str | None] = []
    real_render = composing.render_to_string

    def render(*args: Any, **kwargs: Any) -> str:
        languages.append(translation.get_language())
        return real_render(*args, **kwargs)

    monkeypatch.setattr(composing, "render_to_string", render)
    delivery = AlertDelivery.objects.create(user=guest, email=GUEST_EMAIL, photo_count=1, events={})
    composing.digest_message(delivery)
    assert languages == ["fr"]


def test_the_digest_reminds_the_guest_of_the_matches_they_are_asked_about(
    smtp_server: SmtpServer,
    member: User,
    event: Event,
    scene_upload: Any,
    django_capture_on_commit_callbacks: Any,
    settings: Any,
) -> None:
    # tests.correction_scenes: the look-alike's faces (x1, x2) are 0.38 from the selfie, the guest's own 0.2.
    settings.FACE_REVIEW_DISTANCE = 0.3
    settings.ALERT_BATCH_DELAY = 120
    enrol_selfie(member, png_upload("me.png", scene_png([0])))
    set_notifications(member, GUEST_EMAIL, True)
    with django_capture_on_commit_callbacks(execute=True):
        scene_upload("a1.png", "x1.png", "a2.png", "x2.png")
    assert Match.objects.filter(user=member).count() == 4

    time_passes(member)
    assert run_alert_schedules() == ["sent"]
    [message] = wait_for(smtp_server.messages, 10, "the digest")
    body = " ".join(text_of(message).split())
    assert "We are not sure about 2 of your photos there" in body
    assert AlertDelivery.objects.get(user=member).questions == {str(event.pk): 2}

    # Once the guest has answered, the next digest has nothing to remind them of.
    mark_not_me(member, Photo.objects.get(filename="x1.png"))
    assert alerts.questions_waiting(member.pk, [event.pk]) == {}
